"""The pool toolkit: the instrumented task's waits, and the trusted-side views of pool evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future
from multiprocessing import pool as mpool
from pathlib import Path
from typing import Any

import pytest

from grader.evidence import Run
from grader.evidence.pools import pool_tasks, pools, worker_peak
from grader.inside import probe_pools
from grader.sandbox import RawRun

MAIN = 100


@pytest.fixture
def plan_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The plan's folder under tmp_path; other tasks could run (whatever threads this test process has)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(probe_pools, "_nothing_else_runs", lambda plan: False)
    # arrange(hold_first=True) makes these leave markers: only for this test
    monkeypatch.setattr(mpool.ApplyResult, "ready", mpool.ApplyResult.ready)
    monkeypatch.setattr(Future, "done", Future.done)
    monkeypatch.setattr(mpool.ApplyResult, "wait", mpool.ApplyResult.wait)  # arrange() makes the caller say it waits
    return tmp_path / "grader-pool-tasks"


ALONE = """
import json, multiprocessing, sys, tempfile, threading, time
tempfile.tempdir = sys.argv[1]
from grader.inside import probe_pools

def timed(items, **plan):
    probe_pools.arrange(items, **plan)
    t0 = time.monotonic()
    values = [probe_pools.task(x) for x in items]
    return values, round(time.monotonic() - t0, 1)

case = sys.argv[2]
if case == "caller":  # a plain loop in the caller: no thread, no child
    print(json.dumps([timed([1, 2, 3], meet=2, cap=60), timed([4, 5], hold_first=True, cap=60)]))
else:
    release, child = threading.Event(), None
    if case == "thread":
        threading.Thread(target=release.wait).start()
    elif case == "child":
        child = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(30,))
        child.start()
    probe_pools.arrange([1], meet=2, cap=1)
    plan = probe_pools._plan()
    if case == "other pid":  # the task runs in a process other than the one that made the plan
        plan["caller"] = 1
    print(probe_pools._nothing_else_runs(plan))
    release.set()
    if child is not None:
        child.kill()
        child.join()
"""


def _alone(tmp_path: Path, case: str) -> str:
    done = subprocess.run([sys.executable, "-c", ALONE, str(tmp_path), case], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.timeout(60)
def test_tasks_in_the_caller_as_its_only_thread_wait_for_nothing(tmp_path: Path) -> None:
    """No other task can start or end while a plain loop in the caller runs one: waiting (60 s here) changes nothing."""
    (met, met_took), (held, held_took) = json.loads(_alone(tmp_path, "caller"))
    assert met == [4, 7, 10] and held == [13, 16]
    assert met_took < 30 and held_took < 30


@pytest.mark.parametrize("case", ["other pid", "thread", "child"])
def test_a_task_waits_while_anything_else_could_run_a_task(tmp_path: Path, case: str) -> None:
    """In a pool's worker (not the caller), beside another thread, or while the caller has a child process."""
    assert _alone(tmp_path, case) == "False"


WAITS_ALONE = """
import concurrent.futures, json, multiprocessing, sys, threading, time
from grader.inside import probe_pools

if __name__ == "__main__":
    probe_pools.install_pools({})
    probe_pools.arrange([1])
    got = {}
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        one = pool.apply_async(time.sleep, (0.5,))
        got["one apply"] = probe_pools._waits_alone(one)
        one.get()
        first, second = pool.apply_async(time.sleep, (0.5,)), pool.apply_async(time.sleep, (0.5,))
        got["two applies"] = probe_pools._waits_alone(first)
        first.get(), second.get()
        last = pool.map_async(time.sleep, [0.5])
        got["a map of one chunk"] = probe_pools._waits_alone(last)
        last.get()
        many = pool.map_async(time.sleep, [0.5] * 4, chunksize=1)
        got["a map of four chunks"] = probe_pools._waits_alone(many)
        many.get()
        release = threading.Event()
        helper = threading.Thread(target=release.wait)
        helper.start()
        beside = pool.apply_async(time.sleep, (0.5,))
        got["another thread"] = probe_pools._waits_alone(beside)
        release.set()
        helper.join()
        beside.get()
        with multiprocessing.get_context("spawn").Pool(1) as other:
            busy = other.apply_async(time.sleep, (1,))
            alone = pool.apply_async(time.sleep, (0.5,))
            got["another pool's task"] = probe_pools._waits_alone(alone)
            busy.get(), alone.get()
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as executor:
            submitted = executor.submit(time.sleep, 0.5)
            got["one submit"] = probe_pools._waits_alone(submitted)
            submitted.result()
            first, second = executor.submit(time.sleep, 0.5), executor.submit(time.sleep, 0.5)
            got["two submits"] = probe_pools._waits_alone(first)
            first.result(), second.result()
            beside = pool.apply_async(time.sleep, (0.5,))
            submitted = executor.submit(time.sleep, 0.5)
            got["a submit beside a pool's task"] = probe_pools._waits_alone(submitted)
            beside.get(), submitted.result()
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            submitted = threads.submit(time.sleep, 0.5)
            got["a thread executor's submit"] = probe_pools._waits_alone(submitted)
            submitted.result()
        probe_pools._caller[0] = 1
        mine = pool.apply_async(time.sleep, (0.5,))
        got["not the caller"] = probe_pools._waits_alone(mine)
        mine.get()
    print(json.dumps(got))
"""


def test_the_caller_says_it_waits_alone_only_when_no_other_task_can_start(tmp_path: Path) -> None:
    """Blocked on the last task of its pools and process executors, with no thread of its own beside: then no task but
    that one can start."""
    script = tmp_path / "waits_alone.py"
    script.write_text(WAITS_ALONE)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
                               "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "one apply": True,
        "two applies": False,
        "a map of one chunk": True,
        "a map of four chunks": False,
        "another thread": False,
        "another pool's task": False,
        "one submit": True,
        "two submits": False,
        "a submit beside a pool's task": False,
        "a thread executor's submit": False,
        "not the caller": False,
    }


@pytest.mark.parametrize(
    ("entry", "caller_waits"),
    [("buggy/apply_one_at_a_time", True), ("buggy/submit_one_at_a_time", True), ("correct/apply_async_in_order", False),
     ("correct/with_pool_map", False), ("buggy/futures_polled_done", False)],
)
def test_tasks_stop_waiting_once_the_caller_waits_for_each_result(entry: str, caller_waits: bool) -> None:
    """``pool.apply`` or ``submit(...).result()`` per item: each task stops waiting for a second process (and the
    first item for the others) once the caller is blocked on it, instead of waiting out the cap. A real pool's or
    executor's tasks wait as before."""
    from grader.checks import Submission
    from grader.model.assignment import find_assignment

    corpus = Path(__file__).resolve().parent / "corpus" / "pool_map"
    submission = Submission(find_assignment("pool_map"), corpus / f"{entry}.py")
    run = submission.drive("map_task", [6, 2, 9, 4], 2, meet=2, hold_first=True, probes=["pools"], timeout=60)
    assert sorted(run.value) == [7, 13, 19, 28]  # in order, but for futures_polled_done (its bug)
    outcomes = [t.waited(kind).get("outcome") for t in pool_tasks(run) for kind in ("meet", "hold") if t.waited(kind)]
    assert "gave_up" not in outcomes
    assert ("caller_waits" in outcomes) is caller_waits


def _run(events: list[dict[str, Any]]) -> Run:
    for e in events:
        e.setdefault("tid", 1)
    raw = RawRun(
        result={"import": {"ok": True}, "call": {"ok": True, "value": None}},
        events=sorted(events, key=lambda e: e["t"]),
        stdout="",
        stderr="",
        timed_out=False,
        exit_status=0,
        duration=1.0,
        main_pid=MAIN,
    )
    return Run(raw, label="parallel_map(task, ...)", module_file="pool_map.py")


def test_task_returns_three_x_plus_one_and_raises_for_failing_items(plan_in_tmp: Path) -> None:
    probe_pools.arrange([1, 2, 3], fail=[2])
    assert probe_pools.task(1) == 4
    with pytest.raises(ValueError, match=r"task refused item 2 \(raised on purpose by the grader\)"):
        probe_pools.task(2)


def test_a_rendezvous_that_cannot_happen_costs_the_cap_once(plan_in_tmp: Path) -> None:
    probe_pools.arrange([1, 2, 3], meet=2, hold_first=True, cap=0.3)
    t0 = time.monotonic()
    assert probe_pools.task(1) == 4  # one process: the meeting never happens, the task gives up
    first = time.monotonic() - t0
    assert 0.3 <= first < 2.0
    assert (plan_in_tmp / probe_pools.GAVE_UP).exists()
    t1 = time.monotonic()
    assert [probe_pools.task(2), probe_pools.task(3)] == [7, 10]
    assert time.monotonic() - t1 < 0.25  # later tasks skip their waits


def test_the_held_item_waits_for_every_other_item(plan_in_tmp: Path) -> None:
    probe_pools.arrange([5, 6, 7], hold_first=True, cap=5.0)
    probe_pools.task(6)
    probe_pools.task(7)
    t0 = time.monotonic()
    assert probe_pools.task(5) == 16  # the others are done: only the margin is waited
    assert probe_pools.HOLD_MARGIN <= time.monotonic() - t0 < 3.0
    assert not (plan_in_tmp / probe_pools.GAVE_UP).exists()


def test_a_held_item_waits_for_the_next_poll_of_a_caller_that_polls(plan_in_tmp: Path) -> None:
    # A caller that polls keeps what is ready at each poll: the held item ends only once it polled after the
    # others were done, so that a poll saw them ready and the held one not.
    probe_pools.arrange([5, 6, 7], hold_first=True, cap=5.0)
    with mpool.ThreadPool(1) as pool:
        assert pool.apply_async(int).get(5) == 0
        probe_pools.task(6)
        result = pool.apply_async(probe_pools.task, (5,))  # held: 7 is not done
        assert not result.ready()  # the caller polls: the held item will wait for its next poll
        probe_pools.task(7)
        time.sleep(0.5)
        assert not result.ready()  # no poll since 7 was done: still held (the margin alone is 0.1 s)
        deadline = time.monotonic() + 5
        while not result.ready() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert result.get(5) == 16
    assert sorted(p.name for p in plan_in_tmp.iterdir() if not p.name.startswith("done.")) == sorted(
        [probe_pools.PLAN_FILE, probe_pools.POLLED, probe_pools.HELD, probe_pools.POLLED_SINCE, "started." + str(os.getpid())])


def test_a_poll_before_the_other_results_reached_the_caller_does_not_release_the_held_item(plan_in_tmp: Path) -> None:
    # The other tasks ended, but their results are still on their way to the caller (the pool's result thread
    # of a busy machine): a poll then finds none of them ready, and a caller that keeps what is ready at each
    # poll would keep them all at its next one, in input order. The held item waits for a poll that finds
    # them arrived.
    import threading

    probe_pools.arrange([5, 6, 7], hold_first=True, cap=5.0)
    arrived = threading.Event()
    with mpool.ThreadPool(3) as pool:
        on_their_way = [pool.apply_async(arrived.wait, (10,)) for _ in range(2)]  # the results of 6 and 7
        held = pool.apply_async(probe_pools.task, (5,))
        polled = [r.ready() for r in (held, *on_their_way)]
        assert polled == [False, False, False] and (plan_in_tmp / probe_pools.POLLED).exists()
        probe_pools.task(6)
        probe_pools.task(7)  # their tasks ended: the held item now waits for a poll
        deadline = time.monotonic() + 5
        while not (plan_in_tmp / probe_pools.HELD).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [r.ready() for r in (held, *on_their_way)] == [False, False, False]  # a poll, and nothing arrived
        time.sleep(0.5)
        assert not held.ready() and not (plan_in_tmp / probe_pools.POLLED_SINCE).exists()
        arrived.set()
        for result in on_their_way:
            result.wait(5)
        deadline = time.monotonic() + 5
        while not held.ready() and time.monotonic() < deadline:  # the first poll that finds them arrived
            time.sleep(0.05)
        assert held.get(5) == 16
    assert (plan_in_tmp / probe_pools.POLLED_SINCE).exists()


def test_a_future_polled_with_done_counts_as_a_poll(plan_in_tmp: Path) -> None:
    probe_pools.arrange([1, 2], hold_first=True)
    assert not Future().done()
    assert (plan_in_tmp / probe_pools.POLLED).exists()


def test_a_held_item_waits_for_a_poll_that_never_comes_at_most_poll_wait(
    plan_in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_pools, "POLL_WAIT", 0.3)
    probe_pools.arrange([5, 6], hold_first=True, cap=5.0)
    assert not Future().done()  # it polled once, then waits for a result without polling
    probe_pools.task(6)
    t0 = time.monotonic()
    assert probe_pools.task(5) == 16
    assert 0.3 <= time.monotonic() - t0 < 3.0
    assert not (plan_in_tmp / probe_pools.GAVE_UP).exists()  # later waits of the run are not skipped


def test_arrange_clears_the_markers_of_the_last_call(plan_in_tmp: Path) -> None:
    probe_pools.arrange([1], meet=2, cap=0.05)
    probe_pools.task(1)
    probe_pools.arrange([1])
    assert sorted(p.name for p in plan_in_tmp.iterdir()) == [probe_pools.PLAN_FILE]


def test_pool_tasks_pair_starts_and_ends_per_thread() -> None:
    run = _run(
        [
            {"ev": "pool_task", "phase": "start", "item": 6, "pid": 201, "t": 1.0, "thread": "MainThread"},
            {"ev": "pool_task", "phase": "start", "item": 2, "pid": 202, "t": 1.1, "thread": "MainThread"},
            {"ev": "pool_task", "phase": "end", "item": 2, "pid": 202, "t": 1.2, "waits": {}},
            {
                "ev": "pool_task",
                "phase": "end",
                "item": 6,
                "pid": 201,
                "t": 1.5,
                "waits": {"meet": {"outcome": "met", "seconds": 0.1}},
            },
            {"ev": "pool_task", "phase": "start", "item": 9, "pid": 202, "t": 1.3, "thread": "MainThread"},
        ]
    )
    tasks = pool_tasks(run)
    assert [(t.item, t.pid, t.start, t.end) for t in tasks] == [(6, 201, 1.0, 1.5), (2, 202, 1.1, 1.2), (9, 202, 1.3, None)]
    assert tasks[0].waited("meet") == {"outcome": "met", "seconds": 0.1}
    assert tasks[1].waited("hold") == {}


def test_pool_life_says_whether_the_code_shut_the_pool_down() -> None:
    run = _run(
        [
            {"ev": "pool_new", "pool": "100:1", "pid": MAIN, "t": 1.0, "processes": 2, "workers": [201, 202]},
            {"ev": "pool_terminate", "pool": "100:1", "pid": MAIN, "t": 2.0},
            {"ev": "pool_new", "pool": "100:2", "pid": MAIN, "t": 3.0, "processes": 2, "workers": [203, 204]},
            {"ev": "pool_close", "pool": "100:2", "pid": MAIN, "t": 3.5},
            {"ev": "pool_new", "pool": "100:3", "pid": MAIN, "t": 4.0, "processes": 2, "workers": [205, 206]},
            {"ev": "pool_close", "pool": "100:3", "pid": MAIN, "t": 4.5},
            {"ev": "pool_join", "pool": "100:3", "pid": MAIN, "t": 4.6},
            {"ev": "pool_new", "pool": "100:4", "pid": MAIN, "t": 5.0, "processes": 2, "worker_kind": "threads"},
            {"ev": "pool_unclosed", "pool": "100:4", "pid": MAIN, "t": 5.5},
        ]
    )
    found = pools(run)
    assert [p.shut_down for p in found] == [2.0, None, 4.6, None]
    assert [p.kind for p in found] == ["processes", "processes", "processes", "threads"]
    assert found[3].unclosed == 5.5
    assert [p.id for p in pools(run, 2.5, 4.5)] == ["100:2", "100:3"]


def test_worker_peak_counts_workers_alive_in_the_window() -> None:
    run = _run(
        [
            # a pool made before the window (at import), never joined
            {"ev": "mp_start", "child": 201, "pid": MAIN, "t": 0.5},
            {"ev": "mp_start", "child": 202, "pid": MAIN, "t": 0.6},
            # a pool made in the window, ended by terminate(), which joins only the workers still alive
            {"ev": "mp_start", "child": 203, "pid": MAIN, "t": 1.1},
            {"ev": "mp_start", "child": 204, "pid": MAIN, "t": 1.2},
            {"ev": "pool_new", "pool": "100:1", "pid": MAIN, "t": 1.3, "processes": 2, "workers": [203, 204]},
            {"ev": "mp_join", "child": 204, "pid": MAIN, "t": 1.8, "exitcode": -15},
            {"ev": "pool_terminate", "pool": "100:1", "pid": MAIN, "t": 1.9},
            # the next pool, after the first one is gone
            {"ev": "mp_start", "child": 205, "pid": MAIN, "t": 2.0},
            {"ev": "mp_join", "child": 205, "pid": MAIN, "t": 2.5, "exitcode": 0},
        ]
    )
    assert worker_peak(run, MAIN, 1.0, 3.0) == 4
    assert worker_peak(run, MAIN, 1.95, 3.0) == 3
    assert worker_peak(run, MAIN, 3.0, 4.0) == 2
    assert worker_peak(run, 999, 1.0, 3.0) == 0


def test_a_submission_that_waits_for_each_result_is_told_so() -> None:
    """Both checks that ``submit(...).result()`` per item fails name the cause, not the pool's size."""
    entry = Path(__file__).resolve().parent / "corpus" / "pool_map" / "buggy" / "submit_one_at_a_time.py"
    done = subprocess.run([sys.executable, "-m", "grader", "check", "pool_map", str(entry)], capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(entry.parents[4])})
    assert done.returncode == 1, done.stderr[-2000:]
    blocks = done.stdout.split("\n  FAIL ")[1:]
    spread = next(b for b in blocks if b.startswith("The items run in at least two worker processes"))
    size = next(b for b in blocks if b.startswith("The pool has exactly `workers` worker processes"))
    assert "parallel_map waited for each task's result before it handed out the next item" in spread
    assert "Hint: give the pool every item at once" in size
