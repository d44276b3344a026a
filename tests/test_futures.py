"""concurrent.futures evidence (probe ``futures``) on real runs: workers, overlap, exceptions, shutdown."""

from __future__ import annotations

import textwrap
from pathlib import Path

from grader.evidence import Run, max_overlap
from grader.evidence.futures import executors, tasks
from grader.inside import wire
from grader.sandbox import Sandbox

SOURCE = """
import concurrent.futures
import threading
import time

started = threading.Barrier(2)


def square(x):
    if x == 3:
        raise ValueError("three")
    return x * x


def meet(x):
    started.wait(timeout=10)  # two tasks are running at once, in two workers
    return x


def threads():
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:  # MADE
        met = list(pool.map(meet, [1, 2]))
        future = pool.submit(square, 3)
        try:
            future.result()
        except ValueError:
            pass
    return met


def processes():
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=__import__("multiprocessing").get_context("spawn"))
    results = list(pool.map(square, [1, 2]))
    pool.shutdown(wait=True)
    return results


def never_shut_down():
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    return pool.submit(square, 2).result()
"""


def line_of(marker: str) -> int:
    return next(n for n, text in enumerate(textwrap.dedent(SOURCE).splitlines(), 1) if f"# {marker}" in text)


def sandbox_run(tmp_path: Path, func: str) -> Run:
    path = tmp_path / "pools.py"
    path.write_text(textwrap.dedent(SOURCE))
    sandbox = Sandbox(path, "pools", start_method="spawn")
    action = {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=40, probes=["futures"])
    run = Run(raw, label=f"{func}()", module_file="pools.py")
    assert run.ending() is None, run.ending()
    return run


def test_a_thread_pool_its_workers_overlap_exception_and_shutdown(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, "threads")
    assert run.value == [1, 2]
    (pool,) = executors(run)
    assert (pool.kind, pool.max_workers, pool.line, pool.wait) == ("threads", 2, line_of("MADE"), True)
    met = [t for t in tasks(run) if t.fn == "pools.meet"]
    assert len(met) == 2 and all(t.pid == run.main_pid for t in met)
    assert len({t.worker for t in met}) == 2 and run.caller_tid not in {t.tid for t in met}
    assert max_overlap([(t.start, t.end) for t in met if t.start is not None and t.end is not None]) == 2
    (failed,) = [t for t in tasks(run) if t.fn == "pools.square"]
    assert failed.error == "ValueError"
    assert pool.shut_down is not None and all(t.end is not None and t.end <= pool.shut_down for t in tasks(run))


def test_a_process_pool_runs_tasks_in_worker_processes(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, "processes")
    assert run.value == [1, 4]
    (pool,) = executors(run)
    assert (pool.kind, pool.max_workers, pool.wait) == ("processes", 2, True)
    ran = tasks(run)
    assert len(ran) == 2 and all(t.pid is not None and t.pid != run.main_pid for t in ran)
    assert all(t.submit_pid == run.main_pid and t.error is None for t in ran)


def test_an_executor_never_shut_down_says_so(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, "never_shut_down")
    (pool,) = executors(run)
    assert pool.shut_down is None and pool.wait is None
