"""The lock-order graph (grader.evidence.lockorder) on real sandbox runs: cycles that could close, and designs that cannot.

Every program here runs its threads one after the other (start, join), so no run deadlocks: the cycles
are found from the order in which locks were taken, on every run, not from a hang.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from grader.checks import CheckFailed, expect_no_lock_order_cycle
from grader.evidence import Run
from grader.evidence.lockorder import blocked_cycle, order_cycles, order_edges
from grader.evidence.locks import acquisitions, attempts, lock_creations
from grader.inside import wire
from grader.sandbox import RawRun, Sandbox

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


# -- a monitor: forks taken under a Condition once seen free, and put back under it -------------------------------

MONITOR = """
            with table:
                table.wait_for(lambda: {look})
                left.acquire()  # TAKE
                right.acquire()
            eat(i)
            eaten[i] += 1
            with table:  # BACK
                right.release()
                left.release()
                table.notify_all()
"""


def test_a_monitor_that_takes_forks_seen_free_and_puts_them_back_under_its_condition_is_no_cycle(
    tmp_path: Path,
) -> None:
    take = MONITOR.replace("{look}", "not left.locked() and not right.locked()")
    source = philosophers(take, setup="table = threading.Condition()")
    run = sandbox_run(tmp_path, source, "dine")
    assert run.value == [2, 2, 2, 2, 2]
    forks = {c.key for c in lock_creations(run).values() if c.line == line_of(source, "FORKS")}
    (table,) = {c.key for c in lock_creations(run).values() if c.kind == "Condition"}
    taken = [a for a in acquisitions(run) if a.lock in forks]
    assert taken and all(a.free_under == {table} for a in taken)  # each fork seen free under the Condition
    assert {(e.held, e.acquired) for e in order_edges(run)} == {(fork, table) for fork in forks}  # only BACK's
    assert order_cycles(run) == []
    expect_no_lock_order_cycle(run)


def test_a_monitor_that_takes_forks_without_looking_closes_a_cycle_through_its_condition(tmp_path: Path) -> None:
    source = philosophers(MONITOR.replace("{look}", "True"), setup="table = threading.Condition()")
    run = sandbox_run(tmp_path, source, "dine")  # one philosopher at a time: it does not deadlock here
    assert all(not a.free_under for a in acquisitions(run))
    cycles = order_cycles(run)
    assert cycles and len(cycles[0].edges) == 2
    take, back = line_of(source, "TAKE"), line_of(source, "BACK")
    assert sorted(e.line for e in cycles[0].edges) in ([take, back], [take + 1, back])  # a fork, then the Condition


# -- hand-made evidence: what the rules decide --------------------------------------------------------------------

MAIN, T_MAIN, T1, T2 = 100, 1, 11, 12


def made_run(events: list[dict[str, Any]], *, pids: tuple[int, ...] = (MAIN,)) -> Run:
    base: list[dict[str, Any]] = [{"ev": "proc", "pid": pid, "tid": T_MAIN, "t": 0.0} for pid in pids]
    creations = [
        {"ev": "lk_new", "pid": MAIN, "tid": T_MAIN, "t": 0.01, "key": key, "lock": kind, "file": "p.py", "line": line,
         "func": "dine", "student": True, "index": index}
        for key, kind, line, index in (("G", "Condition", 4, 0), ("A", "Lock", 3, 0), ("B", "Lock", 3, 1))
    ]
    raw = RawRun(
        result={"call": {"ok": True, "value": wire.encode(None)}},
        events=sorted(base + creations + events, key=lambda e: e["t"]), stdout="", stderr="", timed_out=False,
        exit_status=0, duration=1.0, main_pid=MAIN,
    )
    return Run(raw, label="dine()", module_file="p.py")


def op(t: float, tid: int, lock: str, held: list[str], line: int, *, pid: int = MAIN, **extra: Any) -> dict[str, Any]:
    return {"ev": "lk_op", "pid": pid, "tid": tid, "t": t, "op": "acquire", "lock": lock, "held": held,
            "mode": "block", "reentry": False, "file": "p.py", "line": line, "func": "philosopher", "student": True,
            "thread_no": tid - 10, "name": f"Thread-{tid - 10}", **extra}


def want(t: float, tid: int, number: int, lock: str, held: Any, line: int, *, pid: int = MAIN) -> dict[str, Any]:
    return {"ev": "lk_want", "pid": pid, "tid": tid, "t": t, "phase": "start", "want": number, "lock": lock,
            "held": held, "mode": "block", "file": "p.py", "line": line, "func": "philosopher", "student": True,
            "thread_no": tid - 10, "name": f"Thread-{tid - 10}"}


def monitor_evidence(free_under: list[str], *, blind: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Thread 1 takes A then B, thread 2 B then A, each under G; both put them back holding G."""
    out = []
    for tid, (first, second), t in ((T1, ("A", "B"), 1.0), (T2, ("B", "A"), 2.0)):
        out += [
            op(t, tid, "G", [], 10),
            op(t + 0.1, tid, first, ["G"], 12, free_under=free_under),
            op(t + 0.2, tid, second, sorted(["G", first]), 13, free_under=free_under),
            op(t + 0.3, tid, "G", sorted([first, second]), 16),
        ]
    return out + ([blind] if blind else [])


def test_forks_seen_free_under_the_guard_that_every_acquisition_of_them_holds_cannot_wait() -> None:
    assert order_cycles(made_run(monitor_evidence(["G"]))) == []
    seen_blind = made_run(monitor_evidence([]))  # the same order, the forks never looked at: cycles through G and A-B
    assert {frozenset(c.locks) for c in order_cycles(seen_blind)} >= {frozenset({"A", "G"}), frozenset({"B", "G"})}
    # seen free under G, but another thread once took A without G: it could have taken A in between
    elsewhere = made_run(monitor_evidence(["G"], blind=op(3.0, T2, "A", [], 20, mode="try")))
    assert [frozenset(c.locks) for c in order_cycles(elsewhere)] == [frozenset({"A", "G"})]
    # a guard named as seen but no longer held (a forged or stale record) proves nothing
    stale = made_run(monitor_evidence(["X"]))
    assert order_cycles(stale)


def test_attempts_still_waiting_are_edges_and_name_the_circle_the_run_stopped_in() -> None:
    events = [
        op(1.0, T1, "A", [], 5), op(1.1, T2, "B", [], 5),
        want(1.2, T1, 1, "B", ["A"], 6), want(1.3, T2, 2, "A", ["B"], 6),
    ]
    run = made_run(events)
    (cycle,) = order_cycles(run)
    assert all(edge.waiting for edge in cycle.edges) and {e.line for e in cycle.edges} == {6}
    text = cycle.describe(run)
    assert "thread 'Thread-1' took Lock #1 made at p.py line 3 (at p.py line 5), then waited for Lock #2 made at " \
           "p.py line 3 at p.py line 6" in text
    assert "This run deadlocked there: each of these 2 threads held its first lock and waited forever" in text
    blocked = blocked_cycle(run)
    assert blocked is not None and [s.thread_name for s in blocked.steps] == ["Thread-1", "Thread-2"]
    assert blocked.describe(run, {"A": "fork 0", "B": "fork 1"}).startswith(
        "thread 'Thread-1' holds fork 0 (taken at p.py line 5) and waits for fork 1 at p.py line 6, which thread "
        "'Thread-2' holds; thread 'Thread-2' holds fork 1 (taken at p.py line 5) and waits for fork 0 at p.py line 6, "
        "which thread 'Thread-1' holds. Each of these 2 threads waits for a lock the next one holds"
    )


def test_attempts_that_ended_or_do_not_parse_close_no_circle() -> None:
    ended = {"ev": "lk_want", "pid": MAIN, "tid": T2, "t": 1.4, "phase": "end", "want": 2, "ok": True}
    base = [op(1.0, T1, "A", [], 5), op(1.1, T2, "B", [], 5), want(1.2, T1, 1, "B", ["A"], 6)]
    assert blocked_cycle(made_run([*base, want(1.3, T2, 2, "A", ["B"], 6), ended])) is None
    for bad in (want(1.3, T2, 2, "A", "B", 6), want(1.3, T2, 0, "A", ["B"], 6), want(1.3, T2, 2, "A", ["B"] * 65, 6),
                {**want(1.3, T2, 2, "A", ["B"], 6), "lock": 7}, {**want(1.3, T2, 2, "A", ["B"], 6), "phase": "x"}):
        run = made_run([*base, bad])
        assert blocked_cycle(run) is None and order_cycles(run) == [], bad
    (kept,) = attempts(made_run([*base, want(1.25, T1, 1, "A", ["B"], 9)]))  # the first record of a number wins
    assert (kept.lock, kept.line, kept.ended) == ("B", 6, False)


def test_processes_waiting_for_each_others_multiprocessing_locks_are_a_circle() -> None:
    run = made_run(
        [op(1.0, 1, "/mp-a", [], 5, pid=201), op(1.1, 1, "/mp-b", [], 5, pid=202),
         want(1.2, 1, 1, "/mp-b", ["/mp-a"], 6, pid=201), want(1.3, 1, 1, "/mp-a", ["/mp-b"], 6, pid=202)],
        pids=(MAIN, 201, 202),
    )
    blocked = blocked_cycle(run)
    assert blocked is not None and [s.pid for s in blocked.steps] == [201, 202]
    assert len(order_cycles(run)) == 1


def test_a_flood_of_forged_attempts_is_bounded() -> None:
    chain = [want(1.0 + k / 10000, 20 + k, k + 1, f"L{(k + 1) % 3000}", [f"L{k}"], 6) for k in range(3000)]
    blocked = blocked_cycle(made_run(chain))
    assert len(attempts(made_run(chain))) == 3000
    assert order_cycles(made_run(chain)) == []  # the cycle search has its budget too
    assert blocked is None  # the circle closes past the first MAX_WAITING threads: not looked at
    small = [want(1.0 + k / 100, 20 + k, k + 1, f"L{(k + 1) % 20}", [f"L{k}"], 6) for k in range(20)]
    blocked = blocked_cycle(made_run(small))
    assert blocked is not None and len(blocked.steps) == 20
    text = blocked.describe(made_run(small))
    assert text.count(" and waits for ") == 8 and "; and 12 more threads, each waiting for the next." in text


def test_lock_operations_past_the_probes_limit_leave_the_order_unproven() -> None:
    """Fail closed: no cycle among the recorded edges proves nothing when some operations were not recorded."""
    ordered = [op(1.0, T1, "A", [], 5), op(1.1, T1, "B", ["A"], 6), op(2.0, T2, "A", [], 5), op(2.1, T2, "B", ["A"], 6)]
    expect_no_lock_order_cycle(made_run(ordered))
    dropped = {"ev": "lk_dropped", "pid": MAIN, "tid": T_MAIN, "t": 3.0, "what": "lock operations", "count": 40}
    with pytest.raises(CheckFailed) as failed:
        expect_no_lock_order_cycle(made_run([*ordered, dropped]))
    assert failed.value.observed == (
        f"process pid {MAIN} made more kinds of lock operation (lock, locks already held, line, thread) than the probe "
        "records, and 40 of its operations were not recorded, so the order its locks were taken in cannot be checked"
    )
    expect_no_lock_order_cycle(made_run([*ordered, {**dropped, "what": "pauses"}]))
