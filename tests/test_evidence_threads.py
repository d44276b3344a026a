"""Thread evidence: joins matched to the right thread despite reused idents; thread lifetimes; child globals."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from grader.evidence import Run
from grader.inside import wire
from grader.sandbox import RawRun, Sandbox

MAIN = 100


def _run(events: list[dict[str, Any]]) -> Run:
    raw = RawRun(result=None, events=events, stdout="", stderr="", timed_out=False, exit_status=0, duration=0.0, main_pid=MAIN)
    return Run(raw, label="f()", module_file="mod.py")


def _ev(kind: str, t: float, **fields: Any) -> dict[str, Any]:
    return {"ev": kind, "pid": MAIN, "tid": 1, "t": t, **fields}


def test_a_join_belongs_to_the_latest_start_of_the_same_thread_object() -> None:
    # Thread A (ident 7) is started and joined, then B reuses ident 7 and is never joined.
    run = _run(
        [
            _ev("th_start", 1.0, ident=7, obj=11, name="A"),
            _ev("th_join", 2.0, ident=7, obj=11, name="A", alive=False),
            _ev("th_start", 3.0, ident=7, obj=11, name="B"),
        ]
    )
    a, b = run.child_threads()
    assert (a.name, a.joined) == ("A", 2.0)
    assert (b.name, b.joined) == ("B", None)


def test_a_finished_thread_joined_after_its_ident_was_reused_keeps_its_join() -> None:
    # A (ident 7) ends before B starts and gets ident 7 too; A is joined first, then B.
    run = _run(
        [
            _ev("th_start", 1.0, ident=7, obj=11, name="A"),
            _ev("th_start", 2.0, ident=7, obj=12, name="B"),
            _ev("th_join", 3.0, ident=7, obj=11, name="A", alive=False),
            _ev("th_join", 4.0, ident=7, obj=12, name="B", alive=False),
        ]
    )
    assert [(t.name, t.joined) for t in run.child_threads()] == [("A", 3.0), ("B", 4.0)]


def test_a_join_that_timed_out_does_not_count() -> None:
    run = _run([_ev("th_start", 1.0, ident=7, obj=11, name="A"), _ev("th_join", 2.0, ident=7, obj=11, alive=True)])
    assert run.child_threads()[0].joined is None


def test_thread_run_at_picks_the_thread_running_under_that_ident_then() -> None:
    run = _run(
        [
            {"ev": "th_begin", "pid": MAIN, "tid": 7, "t": 1.0, "ident": 7, "name": "A"},
            {"ev": "th_end", "pid": MAIN, "tid": 7, "t": 1.5, "ident": 7, "name": "A"},
            {"ev": "th_begin", "pid": MAIN, "tid": 7, "t": 2.0, "ident": 7, "name": "B"},
        ]
    )
    first, second = run.thread_runs()
    assert (first.name, first.end, second.name, second.end) == ("A", 1.5, "B", None)
    assert run.thread_run_at(MAIN, 7, 1.2) == first
    assert run.thread_run_at(MAIN, 7, 2.5) == second
    assert run.thread_run_at(MAIN, 8, 2.5) is None


def test_probes_record_thread_lifetimes_and_a_childs_globals(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(
        textwrap.dedent(
            """
            import multiprocessing, threading

            counter = 0
            name = "x"

            def bump(n):
                global counter
                counter += n

            def f():
                t = threading.Thread(target=print, args=("hi",))
                t.start()
                t.join()
                p = multiprocessing.Process(target=bump, args=(5,))
                p.start()
                p.join()
                return counter
            """
        )
    )
    raw = Sandbox(path, "mod", start_method="spawn").run(
        {"kind": "call", "func": "f", "args": wire.encode([]), "kwargs": wire.encode({})},
        timeout=20,
        probes=["thread_lifetimes", "module_globals"],
    )
    run = Run(raw, label="f()", module_file="mod.py")
    assert run.value == 0
    (thread,) = run.thread_runs(pid=run.main_pid)
    (line,) = [line for line in run.lines() if line.text == "hi"]
    assert run.thread_run_at(line.pid, line.tid, line.t) == thread
    assert line.tid != run.caller_tid
    (child,) = run.child_processes(parent=run.main_pid)
    assert run.module_globals()[child.pid] == {"counter": 5, "name": "x"}
