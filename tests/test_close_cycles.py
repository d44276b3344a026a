"""The ``close_cycles`` probe (grader/inside/probe_pause.py) and what the grader concludes from it.

A lock-order cycle is only a possibility. Run again with every thread that is about to take a lock
while holding another paused until all the others are paused or waiting, a cycle that can close does,
on every run; one that something outside the graph keeps open (a monitor's eating states) does not,
and the correct design keeps its points.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from grader.checks import CheckFailed, expect_no_lock_order_cycle
from grader.evidence import Run
from grader.evidence.lockorder import blocked_cycle, order_cycles, pauses, stayed_open
from grader.inside import wire
from grader.sandbox import RawRun, Sandbox

CORPUS = Path(__file__).parent / "corpus" / "dining_philosophers"


def sandbox_run(tmp_path: Path, source: str, probes: list[str], func: str = "dine") -> Run:
    path = tmp_path / "philosophers.py"
    path.write_text(textwrap.dedent(source))
    sandbox = Sandbox(path, "philosophers", start_method="spawn")
    action = {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=20, trace=["eat"], probes=probes)
    return Run(raw, label=f"{func}()", module_file="philosophers.py")


def corpus(name: str) -> str:
    return (CORPUS / name).read_text()


@pytest.mark.parametrize("name", ["correct/monitor_of_eating_states.py", "correct/states_and_semaphores.py"])
def test_forks_taken_in_a_circle_that_eating_states_keep_open_lose_no_points(tmp_path: Path, name: str) -> None:
    source = corpus(name)
    run = sandbox_run(tmp_path, source, ["locks"])
    assert run.ending() is None and run.value == [3, 3, 3, 3, 3]
    assert order_cycles(run), "the forks are taken left, then right: the graph alone sees a circle"
    with pytest.raises(CheckFailed):
        expect_no_lock_order_cycle(run)  # the graph alone would take the points

    provoked: list[Run] = []

    def provoke() -> Run:
        provoked.append(sandbox_run(tmp_path, source, ["close_cycles"]))
        return provoked[-1]

    expect_no_lock_order_cycle(run, provoke=provoke)
    (again,) = provoked
    assert again.ending() is None and again.value == [3, 3, 3, 3, 3]
    summary = pauses(again)
    assert summary.quiet >= 5 and summary.cut == 0 and summary.dropped == 0
    assert stayed_open(again)


@pytest.mark.parametrize(
    "name",
    [
        "buggy/monitor_marks_eating_late.py",  # eating marked only once both forks are held
        "buggy/waiter_too_short.py",  # the waiter covers the first fork only
        "buggy/doorman_seats_everyone.py",  # Semaphore(n) seats all five
        "buggy/naive_left_right.py",
    ],
)
def test_a_circle_that_can_close_deadlocks_every_time_the_threads_are_paused(tmp_path: Path, name: str) -> None:
    source = corpus(name)
    for _ in range(2):
        provoked = sandbox_run(tmp_path, source, ["close_cycles"])
        ending = provoked.ending()
        assert ending is not None and "deadlocked" in ending.observed, ending
        stuck = blocked_cycle(provoked)
        assert stuck is not None and len(stuck.steps) == 5
        assert not stayed_open(provoked)


def test_the_message_names_the_cycle_and_the_deadlock_of_the_paused_run(tmp_path: Path) -> None:
    source = corpus("buggy/monitor_marks_eating_late.py")
    run = sandbox_run(tmp_path, source, ["locks"])
    provoked: list[Run] = []

    def provoke() -> Run:
        provoked.append(sandbox_run(tmp_path, source, ["close_cycles"]))
        return provoked[-1]

    with pytest.raises(CheckFailed) as failed:
        expect_no_lock_order_cycle(run, provoke=provoke)
    observed = failed.value.observed
    assert "a deadlock is possible" in observed
    if blocked_cycle(run) is not None:  # this run deadlocked by itself (now and then): judged from it alone
        assert provoked == [] and "it deadlocked" not in observed
    else:
        assert len(provoked) == 1
        assert "it deadlocked: 5 threads each waited for a lock the next one held (philosophers.py line 24)" in observed


LIMITED = """
import threading
import time

def eat(i):
    pass

def dine():
    a, b = threading.Lock(), threading.Lock()
    sleeper = threading.Thread(target=time.sleep, args=(4,))
    sleeper.start()
    with a:
        with b:  # PAUSED
            eat(0)
    sleeper.join()
    return "done"
"""


def test_a_pause_that_waits_for_a_thread_still_running_ends_at_its_limit(tmp_path: Path) -> None:
    run = sandbox_run(tmp_path, LIMITED, ["close_cycles"])
    assert run.ending() is None and run.value == "done"
    (pause,) = run.of("lk_pause")
    assert pause["outcome"] == "limit" and 1.9 <= pause["seconds"] < 3.9  # the sleeper never waited
    assert pause["line"] == 13  # with b
    assert pauses(run).cut == 1


# -- hand-made evidence: what is evidence that a cycle stays open ----------------------------------------------

MAIN, T1, T2 = 100, 11, 12


def made_run(pause_events: list[dict[str, Any]]) -> Run:
    """Two threads took A then B and B then A, one after the other (a cycle), and paused as told."""
    events: list[dict[str, Any]] = [{"ev": "proc", "pid": MAIN, "tid": 1, "t": 0.0}]
    for key, index in (("A", 0), ("B", 1)):
        events.append({"ev": "lk_new", "pid": MAIN, "tid": 1, "t": 0.01, "key": key, "lock": "Lock", "file": "p.py",
                       "line": 3, "func": "dine", "student": True, "index": index})
    for tid, (first, second), t in ((T1, ("A", "B"), 1.0), (T2, ("B", "A"), 2.0)):
        for lock, held, line in ((first, [], 5), (second, [first], 6)):
            events.append({"ev": "lk_op", "pid": MAIN, "tid": tid, "t": t + line / 100, "op": "acquire", "lock": lock,
                           "held": held, "mode": "block", "reentry": False, "file": "p.py", "line": line,
                           "func": "worker", "student": True, "thread_no": tid - 10, "name": f"Thread-{tid - 10}"})
    events += [{"ev": "lk_pause", "pid": MAIN, "tid": T1, "t": 3.0 + n / 100, **p} for n, p in enumerate(pause_events)]
    raw = RawRun(result={"call": {"ok": True, "value": wire.encode(None)}}, events=events, stdout="", stderr="",
                 timed_out=False, exit_status=0, duration=1.0, main_pid=MAIN)
    return Run(raw, label="dine()", module_file="p.py")


QUIET = {"lock": "B", "held": ["A"], "file": "p.py", "line": 6, "func": "worker", "outcome": "quiet", "seconds": 0.01}


def test_only_a_run_whose_every_pause_was_quiet_keeps_its_cycle_open() -> None:
    assert order_cycles(made_run([QUIET]))
    assert stayed_open(made_run([QUIET, QUIET]))
    assert not stayed_open(made_run([]))  # no pause: nothing was driven
    assert not stayed_open(made_run([QUIET, {**QUIET, "outcome": "limit"}]))
    assert not stayed_open(made_run([QUIET, {**QUIET, "outcome": "spent"}]))
    assert not stayed_open(made_run([QUIET, {**QUIET, "outcome": ["quiet"]}]))  # malformed: not trusted
    dropped = made_run([QUIET])
    dropped.events.append({"ev": "lk_dropped", "pid": MAIN, "tid": 1, "t": 4.0, "what": "pauses", "count": 3})
    assert pauses(dropped).dropped == 3 and not stayed_open(dropped)


def test_a_flood_of_forged_pauses_is_read_bounded() -> None:
    run = made_run([QUIET] * 5000)
    summary = pauses(run)
    assert summary.quiet == 1000 and summary.cut == 0
