"""The lock-order graph (grader.evidence.lockorder) on real sandbox runs: cycles that could close, and designs that cannot.

Every program here runs its threads one after the other (start, join), so no run deadlocks: the cycles
are found from the order in which locks were taken, on every run, not from a hang.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.checks import CheckFailed, expect_no_lock_order_cycle
from grader.evidence import Run
from grader.evidence.lockorder import order_cycles, order_edges
from grader.evidence.locks import acquisitions, lock_creations
from grader.inside import wire
from grader.sandbox import Sandbox

PHILOSOPHERS = """
import threading
import time

def eat(i):
    time.sleep(0.001)

def dine(n=5, meals=2):
    forks = [threading.Lock() for _ in range(n)]  # FORKS
    {setup}
    eaten = [0] * n

    def philosopher(i):
        left, right = forks[i], forks[(i + 1) % n]
        {order}
        for _ in range(meals):
{take}
    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
        t.join()
    return eaten
"""

NAIVE = """
            with left:  # FIRST
                with right:  # SECOND
                    eat(i)
                    eaten[i] += 1
"""


def philosophers(take: str = NAIVE, setup: str = "", order: str = "") -> str:
    return PHILOSOPHERS.format(take=take.strip("\n"), setup=setup, order=order)


def line_of(source: str, marker: str) -> int:
    return next(n for n, text in enumerate(textwrap.dedent(source).splitlines(), 1) if f"# {marker}" in text)


def sandbox_run(tmp_path: Path, source: str, func: str, trace: list[str] | None = None) -> Run:
    path = tmp_path / "prims.py"
    path.write_text(textwrap.dedent(source))
    sandbox = Sandbox(path, "prims", start_method="spawn")
    action = {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=30, trace=trace or [], probes=["locks"])
    run = Run(raw, label=f"{func}()", module_file="prims.py")
    assert run.ending() is None, run.ending()
    return run


def test_the_naive_philosophers_close_a_cycle_of_five_forks_each_its_own_node(tmp_path: Path) -> None:
    source = philosophers()
    run = sandbox_run(tmp_path, source, "dine", trace=["eat"])
    assert run.value == [2, 2, 2, 2, 2]
    forks = [c for c in lock_creations(run).values() if c.line == line_of(source, "FORKS")]
    assert sorted(c.index for c in forks) == [0, 1, 2, 3, 4]
    (cycle,) = order_cycles(run)
    assert set(cycle.locks) == {c.key for c in forks}
    assert len({edge.thread for edge in cycle.edges}) == 5
    text = cycle.describe(run)
    first, second = line_of(source, "FIRST"), line_of(source, "SECOND")
    assert text.startswith("a deadlock is possible: thread 'Thread-")
    assert f"Lock #1 made at prims.py line {line_of(source, 'FORKS')} (at prims.py line {first})" in text
    assert f"then Lock #2 made at prims.py line {line_of(source, 'FORKS')} at prims.py line {second}" in text
    assert "If each of these 5 threads takes its first lock at the same moment" in text
    assert all(len(call.locks) == 2 for call in run.calls("eat"))  # eat(i) ran holding both forks
    names = {c.key: f"fork {c.index}" for c in forks}
    with pytest.raises(CheckFailed) as failed:
        expect_no_lock_order_cycle(run, names=names)
    assert failed.value.observed.startswith("a deadlock is possible: thread 'Thread-1 (philosopher)' took fork 0 (at ")
    assert f"then fork 1 at prims.py line {second}" in failed.value.observed
    assert failed.value.expected == "the locks are always taken in an order that can never close a cycle"
    assert "give the locks one global order" in failed.value.hint


def test_a_cycle_of_two_and_of_three_locks(tmp_path: Path) -> None:
    source = """
    import threading

    def run():
        a, b, c = threading.Lock(), threading.Lock(), threading.Lock()

        def take(first, second):
            with first:
                with second:  # SECOND
                    pass

        for pair in ((a, b), (b, a), (b, c), (c, a)):
            t = threading.Thread(target=take, args=pair)
            t.start()
            t.join()
    """
    run = sandbox_run(tmp_path, source, "run")
    cycles = order_cycles(run)
    assert sorted(len(cycle.edges) for cycle in cycles) == [2, 3]
    for cycle in cycles:
        assert all(edge.line == line_of(source, "SECOND") for edge in cycle.edges)
        assert len({edge.thread for edge in cycle.edges}) == len(cycle.edges)


def test_one_thread_taking_two_orders_is_no_cycle_and_rlock_reentry_no_edge(tmp_path: Path) -> None:
    source = """
    import threading

    def run():
        a, b = threading.Lock(), threading.Lock()
        r = threading.RLock()
        with a:
            with b:
                pass
        with b:
            with a:
                pass
        with r:
            with r:  # REENTRY
                pass
    """
    run = sandbox_run(tmp_path, source, "run")
    assert {(e.held, e.acquired) for e in order_edges(run)} == {(e.acquired, e.held) for e in order_edges(run)}
    assert order_cycles(run) == []  # one thread cannot wait for itself at two places
    (reentry,) = [a for a in acquisitions(run) if a.reentry]
    assert reentry.line == line_of(source, "REENTRY")
    assert all(edge.held != edge.acquired for edge in order_edges(run))


def test_lowest_fork_first_has_edges_but_no_cycle(tmp_path: Path) -> None:
    order = "left, right = sorted((left, right), key=forks.index)"
    run = sandbox_run(tmp_path, philosophers(order=order), "dine")
    assert run.value == [2, 2, 2, 2, 2]
    assert len(order_edges(run)) == 5
    assert order_cycles(run) == []


def test_a_waiter_lock_guarding_both_picks_is_no_cycle(tmp_path: Path) -> None:
    take = """
            with waiter:
                left.acquire()
                right.acquire()
            eat(i)
            eaten[i] += 1
            right.release()
            left.release()
    """
    source = philosophers(take, setup="waiter = threading.Lock()")
    run = sandbox_run(tmp_path, source, "dine")
    assert run.value == [2, 2, 2, 2, 2]
    forks = {c.key for c in lock_creations(run).values() if c.line == line_of(source, "FORKS")}
    fork_edges = [e for e in order_edges(run) if e.held in forks and e.acquired in forks]
    assert len({(e.held, e.acquired) for e in fork_edges}) == 5  # the fork ring is in the graph ...
    assert order_cycles(run) == []  # ... but every edge of it was taken holding the waiter
    expect_no_lock_order_cycle(run)


def test_a_semaphore_seating_n_minus_1_is_no_cycle_but_seating_n_is(tmp_path: Path) -> None:
    take = NAIVE.replace("with left:", "with seats, left:")
    seated = sandbox_run(tmp_path, philosophers(take, setup="seats = threading.Semaphore(n - 1)"), "dine")
    assert seated.value == [2, 2, 2, 2, 2]
    assert order_cycles(seated) == []
    everyone = sandbox_run(tmp_path, philosophers(take, setup="seats = threading.Semaphore(n)"), "dine")
    assert len(order_cycles(everyone)) == 1


def test_trying_the_second_fork_without_blocking_and_backing_off_is_no_cycle(tmp_path: Path) -> None:
    take = """
            while True:
                left.acquire()
                if right.acquire(blocking=False):
                    break
                left.release()
                time.sleep(0.001)
            eat(i)
            eaten[i] += 1
            right.release()
            left.release()
    """
    run = sandbox_run(tmp_path, philosophers(take), "dine")
    assert run.value == [2, 2, 2, 2, 2]
    assert {a.mode for a in acquisitions(run) if a.held} == {"try"}
    assert order_cycles(run) == []


def test_multiprocessing_locks_taken_in_two_orders_by_two_processes_close_a_cycle(tmp_path: Path) -> None:
    source = """
    import multiprocessing

    def take(first, second):
        with first:
            with second:  # SECOND
                pass

    def run():
        ctx = multiprocessing.get_context("spawn")
        a, b = ctx.Lock(), ctx.Lock()
        for pair in ((a, b), (b, a)):
            p = ctx.Process(target=take, args=pair)
            p.start()
            p.join()
    """
    run = sandbox_run(tmp_path, source, "run")
    (cycle,) = order_cycles(run)
    assert len({edge.pid for edge in cycle.edges}) == 2 and run.main_pid not in {e.pid for e in cycle.edges}
    assert all(edge.where() == f"prims.py line {line_of(source, 'SECOND')}" for edge in cycle.edges)


PROCESS_PHILOSOPHERS = """
import multiprocessing


def philosopher(forks, i, waiter):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    if waiter is not None:
        waiter.acquire()
    with left:
        with right:  # SECOND
            pass
    if waiter is not None:
        waiter.release()


def dine(guarded):
    ctx = multiprocessing.get_context("spawn")
    forks = [ctx.Lock() for _ in range(3)]
    waiter = ctx.{guard} if guarded else None
    for i in range(3):
        p = ctx.Process(target=philosopher, args=(forks, i, waiter))
        p.start()
        p.join()
"""


def test_processes_with_multiprocessing_forks_a_cycle_of_three_unless_a_waiter_or_two_seats_guard_it(
    tmp_path: Path,
) -> None:
    for guard, guarded, cycles in (("Lock()", False, 1), ("Lock()", True, 0), ("Semaphore(2)", True, 0),
                                   ("Semaphore(3)", True, 1)):
        source = PROCESS_PHILOSOPHERS.replace("{guard}", guard).replace("def dine(guarded):", f"def dine(guarded={guarded}):")
        run = sandbox_run(tmp_path, source, "dine")
        found = order_cycles(run)
        assert len(found) == cycles, (guard, guarded, [c.describe(run) for c in found])
        assert len(order_edges(run)) >= 3
        if found:
            assert {e.where() for e in found[0].edges} == {f"prims.py line {line_of(source, 'SECOND')}"}
            assert len({e.pid for e in found[0].edges}) == 3
