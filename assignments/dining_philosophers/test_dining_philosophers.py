"""Checks for dining_philosophers: philosopher threads share forks around a table (see README.md).

One recorded ``dine(5, 3)`` is judged by most checks: every ``eat(i)`` call with
the thread that made it and the locks that thread held, and every acquisition of
a ``threading`` lock with the locks already held (the lock-order graph). The forks
are found from the evidence, not from names: the locks philosopher i held at every
one of its meals, leaving out a lock that three or more philosophers held while
eating (a waiter, a doorman semaphore). A deadlock is judged possible from the
lock-order graph, so the naive "left fork, then right fork" loses those points on
every run, also when this run happened not to get stuck.
"""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import Submission, brief, expect, expect_no_import_side_effects, expect_no_lock_order_cycle, fail
from grader.evidence import Call, Run
from grader.evidence.locks import describe_lock, holders, lock_creations

MODULE = "philosophers.py"
TABLE = (5, 3)  # dine(n, meals) of the run most checks judge
RUN_TIMEOUT = 15
ORDER_HINT = (
    "make a circle of waits impossible: take the lower-numbered fork first (or reverse one philosopher), or pick "
    "up both forks under one waiter Lock, or seat at most n - 1 philosophers with a Semaphore(n - 1), or take the "
    "second fork with acquire(blocking=False) and put the first back when it is taken"
)


def _dine(submission: Submission) -> Run:
    n, meals = TABLE
    return submission.shared_call("dine", n, meals, trace=["eat"], probes=["locks"], timeout=RUN_TIMEOUT)


def _who(call: Call) -> Any:
    """The philosopher number an eat() call was made for."""
    return call.args[0] if call.args else call.kwargs.get("i")


def _eats(run: Run) -> dict[int, list[Call]]:
    eats: dict[int, list[Call]] = {}
    for call in sorted(run.calls("eat"), key=lambda c: c.start):
        who = _who(call)
        if type(who) is int:
            eats.setdefault(who, []).append(call)
    return eats


def _forks(run: Run, n: int) -> dict[int, frozenset[str]]:
    """Philosopher -> the locks it held at every one of its meals that at most two philosophers held eating."""
    eats = _eats(run)
    eaters: dict[str, set[int]] = {}
    for who, calls in eats.items():
        for call in calls:
            for key in call.locks:
                eaters.setdefault(key, set()).add(who)
    guards = {key for key, who in eaters.items() if len(who) >= 3}
    forks = {}
    for who in range(n):
        calls = eats.get(who, [])
        held = frozenset.intersection(*(frozenset(c.locks) for c in calls)) if calls else frozenset()
        forks[who] = held - guards
    return forks


def _fork_names(run: Run, forks: dict[int, frozenset[str]]) -> dict[str, str]:
    creations = lock_creations(run)
    names = {}
    for key in sorted(set().union(*forks.values())):
        made = creations.get(key)
        names[key] = f"fork {made.index}" if made is not None and made.index is not None else describe_lock(
            key, creations=creations)
    return names


@pytest.mark.points(2)
@pytest.mark.timeout(2 * RUN_TIMEOUT + 10)
def test_every_philosopher_eats_its_meals(submission: Submission) -> None:
    """Every philosopher called eat(i) `meals` times, and dine returns the meals each ate, for two tables."""
    for run, (n, meals) in ((_dine(submission), TABLE),
                            (submission.call("dine", 3, 2, trace=["eat"], timeout=RUN_TIMEOUT), (3, 2))):
        counts = {who: len(calls) for who, calls in _eats(run).items()}
        wrong = {who: counts.get(who, 0) for who in range(n) if counts.get(who, 0) != meals}
        strangers = sorted(set(counts) - set(range(n)), key=repr)
        expect(
            not wrong and not strangers,
            observed=f"in {run.label} " + ", ".join(f"philosopher {who} called eat({who}) {c} time(s)"
                                                     for who, c in list(wrong.items())[:4])
            + (f"; eat() was called with {brief(strangers)}" if strangers else ""),
            expected=f"eat(i) called {meals} times for each philosopher i from 0 to {n - 1}",
            hint="philosopher i loops `meals` times: take both forks, call eat(i), put them back",
        )
        value = run.value
        expect(
            type(value) is list and len(value) == n and all(type(v) is int and v == meals for v in value),
            observed=f"{run.label} returned {brief(value, 80)}",
            expected=f"{[meals] * n}: the number of meals each philosopher ate, indexed by philosopher",
            hint="count each philosopher's meals in a list (eaten[i] += 1 after eat(i)) and return it after joining",
        )


def _expect_ring(forks: dict[int, frozenset[str]], names: dict[str, str], label: str) -> None:
    n = len(forks)
    for who, mine in forks.items():
        expect(
            len(mine) == 2,
            observed=f"in {label} philosopher {who} called eat({who}) holding {len(mine)} fork(s) that only its "
            "neighbours share" + (f" ({', '.join(names.get(k, k) for k in sorted(mine))})" if mine else ""),
            expected=f"philosopher {who} holds both of its forks, two threading.Lock objects, at every meal",
            hint="take both forks (with forks[a]: with forks[b]: eat(i)) and call eat(i) inside, before putting "
            "them back",
        )
    for who in range(n):
        right = (who + 1) % n
        shared = forks[who] & forks[right]
        expect(
            len(shared) == 1,
            observed=f"in {label} philosophers {who} and {right} (neighbours) share {len(shared)} fork(s)",
            expected="neighbours share exactly one fork: the forks form a ring",
            hint="philosopher i uses forks[i] and forks[(i + 1) % n]",
        )


@pytest.mark.points(3)
def test_eats_holding_both_forks_while_neighbours_do_not(submission: Submission) -> None:
    """Whenever eat(i) ran, philosopher i held both of its forks and neither neighbour was eating."""
    run = _dine(submission)
    n = TABLE[0]
    forks = _forks(run, n)
    _expect_ring(forks, _fork_names(run, forks), run.label)
    eats = _eats(run)
    for who in range(n):
        right = (who + 1) % n
        for mine in eats.get(who, []):
            for theirs in eats.get(right, []):
                ends = (mine.end, theirs.end)
                if None not in ends and mine.start < theirs.end and theirs.start < mine.end:
                    fail(
                        f"in {run.label} eat({who}) and eat({right}) ran at the same time, though they are neighbours",
                        "neighbours never eat at once: the fork they share is held by one of them",
                        "hold both forks for the whole of eat(i)",
                    )


@pytest.mark.points(2)
def test_each_fork_taken_only_by_its_two_philosophers(submission: Submission) -> None:
    """Each fork was only ever taken by the two philosophers that share it."""
    run = _dine(submission)
    n = TABLE[0]
    forks = _forks(run, n)
    names = _fork_names(run, forks)
    threads = {who: {(c.pid, c.tid) for c in calls} for who, calls in _eats(run).items()}
    taken = {key: {(pid, tid) for pid, tid, _ in threads} for key, threads in holders(run).items()}
    for key in sorted(set().union(*forks.values())):
        sharers = [who for who in range(n) if key in forks[who]]
        if len(sharers) == 2 and (sharers[1] - sharers[0]) % n not in (1, n - 1):
            fail(
                f"in {run.label} philosophers {sharers[0]} and {sharers[1]}, who are not neighbours, both ate holding "
                f"{names.get(key, key)}",
                "each fork shared by two neighbours only: philosopher i and philosopher (i + 1) % n",
                "philosopher i uses forks[i] and forks[(i + 1) % n] (or forks[i - 1]), never a fork further away",
            )
        allowed = set().union(*(threads.get(who, set()) for who in sharers))
        others = sorted(taken.get(key, set()) - allowed)
        if others:
            pid, tid = others[0]
            owner = [who for who, seen in threads.items() if (pid, tid) in seen]
            by = f"philosopher {owner[0]}" if owner else ("the thread that called dine()" if tid == run.caller_tid
                                                        else f"thread {tid}, which never ate")
            fail(
                f"in {run.label} {names.get(key, key)}, which philosophers {' and '.join(map(str, sharers))} share, "
                f"was also taken by {by}",
                "each fork taken only by the two philosophers next to it",
                "philosopher i only ever takes its own two forks, forks[i] and forks[(i + 1) % n]; dine() only creates "
                "them and starts the threads",
            )


@pytest.mark.points(4)
@pytest.mark.timeout(RUN_TIMEOUT + 25)  # a run that deadlocked is judged after its time limit, from its evidence
def test_no_deadlock_possible(submission: Submission) -> None:
    """No circle of forks taken while holding another is possible, judged on every run, stuck or not."""
    n, meals = TABLE
    run = submission.call("dine", n, meals, trace=["eat"], probes=["locks"], timeout=RUN_TIMEOUT, allow_error=True)
    forks = _forks(run, n)
    expect_no_lock_order_cycle(run, hint=ORDER_HINT, names=_fork_names(run, forks))
    ending = run.ending()
    if ending is not None:
        submission.require_returned(run)


@pytest.mark.points(1)
def test_every_thread_joined(submission: Submission) -> None:
    """dine() runs the philosophers in threads of its own process and joins every one before returning."""
    run = _dine(submission)
    if run.child_processes():
        fail(
            f"{run.label} started {len(run.child_processes())} process(es) with multiprocessing",
            "philosophers are threading.Thread threads sharing threading.Lock forks",
            "use threading.Thread: a process gets its own copy of the forks, which excludes nobody",
        )
    for thread in run.child_threads(pid=run.main_pid):
        if thread.joined is None:
            fail(
                f"{run.label} never joined thread {thread.name}" + (" (a daemon thread)" if thread.daemon else ""),
                "dine() calls join() on every philosopher before it returns",
                "keep the Thread objects in a list and join each one before returning the meal counts",
            )
    alive = run.threads_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} thread(s) still running when dine() returned: "
        + ", ".join(str(t.get("name")) for t in alive[:4]),
        expected="no thread left running",
        hint="join every thread you start",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing philosophers.py prints nothing and starts no thread or process."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="put the call to dine() under `if __name__ == \"__main__\":`",
        timeout=15,
    )
