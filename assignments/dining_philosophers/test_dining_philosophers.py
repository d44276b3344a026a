"""Checks for dining_philosophers: philosopher threads share forks around a table (see README.md).

One recorded ``dine(5, 3)`` is judged by most checks (``dine()``, its defaults, by
the deadlock check): every ``eat(i)`` call with
the thread that made it and the locks that thread held, and every acquisition of
a ``threading`` lock with the locks already held (the lock-order graph). The forks
are found from the evidence, not from names: the locks philosopher i held at every
one of its meals, leaving out a lock that three or more philosophers held while
eating (a waiter, a doorman semaphore) and semaphores made with a value other
than 1 (a semaphore per philosopher that a neighbour releases to let it eat). A deadlock is judged possible from the
lock-order graph, so the naive "left fork, then right fork" loses those points on
every run, also when this run happened not to get stuck; a graph with a cycle is
run once more with the ``close_cycles`` probe, and a design whose circle of forks
stays open there (a monitor of eating states) keeps them. The checks of the meals
do the same, so that a grade does not depend on whether this run got stuck: where
the circle closes in that run, ``dine()`` may never return, and each of them fails
with that deadlock, as when the recorded run itself deadlocked.
"""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import (
    CheckTimedOut,
    Submission,
    brief,
    expect,
    expect_no_import_side_effects,
    expect_no_lock_order_cycle,
    expect_threads_joined,
    fail,
)
from grader.evidence import Call, Run, max_overlap
from grader.evidence.lockorder import order_cycles, stayed_open
from grader.evidence.locks import describe_lock, holders, lock_creations

MODULE = "philosophers.py"
TABLE = (5, 3)  # dine(n, meals) of the run most checks judge
RUN_TIMEOUT = 15
ORDER_HINT = (
    "make a circle of waits impossible: take the lower-numbered fork first (or reverse one philosopher), or pick "
    "up both forks under one waiter Lock, or seat at most n - 1 philosophers with a Semaphore(n - 1), or take the "
    "second fork with acquire(blocking=False) and put the first back when it is taken; a monitor takes both forks "
    "under its Condition only once wait_for saw both free (not fork.locked())"
)


PROVOKED_NOTE = (
    "That run of dine() held each philosopher back just before a fork it takes while holding another, until every "
    "other one was held back or waiting: an order its threads can also take by themselves, on any run, so dine() "
    "may never return."
)


def _dine(submission: Submission) -> Run:
    n, meals = TABLE
    run = submission.shared_call("dine", n, meals, trace=["eat"], probes=["locks"], timeout=RUN_TIMEOUT, allow_error=True)
    return _unless_it_can_deadlock(submission, run)


def _dine_defaults(submission: Submission, *, allow_error: bool = False) -> Run:
    """dine() with no arguments: its defaults are n=5, meals=3, the table of TABLE."""
    run = submission.shared_call("dine", trace=["eat"], probes=["locks"], timeout=RUN_TIMEOUT, allow_error=True)
    return run if allow_error else _unless_it_can_deadlock(submission, run)


def _provoke(submission: Submission) -> Run:
    """dine() with each philosopher held back where a circle of forks would close (the ``close_cycles`` probe)."""
    return submission.shared_call("dine", trace=["eat"], probes=["close_cycles"], timeout=RUN_TIMEOUT, allow_error=True)


def _unless_it_can_deadlock(submission: Submission, run: Run) -> Run:
    """``run``, for a check of what it did; the check fails as a deadlock where one is possible (see the docstring).

    A run that did not return fails the check as it ended. One that returned, though its lock-order graph has a
    cycle that closed in the :func:`_provoke` run, fails it with that run's deadlock: whether the recorded run got
    stuck is luck, and the grade must not depend on it. A cycle that stays open there (a monitor) changes nothing.
    """
    submission.require_returned(run)
    if order_cycles(run):
        provoked = _provoke(submission)
        if not stayed_open(provoked):
            try:
                submission.require_returned(provoked)
            except CheckTimedOut as stuck:
                raise CheckTimedOut(f"{stuck.message} {PROVOKED_NOTE}", stuck.diagnostics) from None
    return run


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
    """Philosopher -> the locks it held at every one of its meals that at most two philosophers held eating.

    A semaphore made with a value other than 1 is a signal or a doorman, never a
    fork (a semaphore per philosopher, released by a neighbour, that lets it eat).
    """
    eats = _eats(run)
    creations = lock_creations(run)
    eaters: dict[str, set[int]] = {}
    for who, calls in eats.items():
        for call in calls:
            for key in call.locks:
                eaters.setdefault(key, set()).add(who)
    guards = {key for key, who in eaters.items() if len(who) >= 3}
    guards |= {key for key in eaters if _is_signal(creations.get(key))}
    forks = {}
    for who in range(n):
        calls = eats.get(who, [])
        held = frozenset.intersection(*(frozenset(c.locks) for c in calls)) if calls else frozenset()
        forks[who] = held - guards
    return forks


def _is_signal(made: Any) -> bool:
    return made is not None and made.kind in ("Semaphore", "BoundedSemaphore") and made.initial != 1


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
    run = _dine_defaults(submission, allow_error=True)

    def names(one: Run) -> dict[str, str]:
        return _fork_names(one, _forks(one, TABLE[0]))

    expect_no_lock_order_cycle(run, hint=ORDER_HINT, names=names, provoke=lambda: _provoke(submission))
    ending = run.ending()
    if ending is not None:
        submission.require_returned(run)


@pytest.mark.points(1)
@pytest.mark.timeout(RUN_TIMEOUT + 25)  # shares the run of test_no_deadlock_possible
def test_dine_defaults(submission: Submission) -> None:
    """dine() with no arguments seats 5 philosophers who eat 3 meals each: the defaults n=5, meals=3."""
    run = _dine_defaults(submission)
    n, meals = TABLE
    counts = {who: len(calls) for who, calls in _eats(run).items()}
    value = run.value
    seated = len(value) if type(value) is list else None
    expect(
        set(counts) == set(range(n)) and all(c == meals for c in counts.values()) and seated == n,
        observed=f"{run.label} (no arguments) made eat(i) calls for philosopher(s) {brief(sorted(counts), 80)}, "
        f"{brief(sorted(set(counts.values())), 40)} meal(s) each, and returned {brief(value, 80)}",
        expected=f"the defaults n={n}, meals={meals}: eat(i) called {meals} times for each i from 0 to {n - 1}, "
        f"and {[meals] * n} returned",
        hint="define it as `def dine(n=5, meals=3):`",
    )


ONE_THREAD_HINT = (
    "start one threading.Thread per philosopher (target=philosopher, args=(i, ...)), whose target loops over that "
    "philosopher's meals, instead of one thread (or dine() itself) eating for every philosopher in turn"
)


@pytest.mark.points(1)
def test_one_thread_per_philosopher(submission: Submission) -> None:
    """Each philosopher eats all its meals in a thread of its own: n philosopher threads, none shared."""
    run = _dine(submission)
    n = TABLE[0]
    eats = {who: calls for who, calls in _eats(run).items() if calls}
    expected = f"{n} philosopher threads, one per philosopher, each eating all its philosopher's meals and no other's"
    by_thread: dict[tuple[int, int], list[int]] = {}
    for who, calls in sorted(eats.items()):
        threads = {(c.pid, c.tid) for c in calls}
        expect(
            len(threads) == 1,
            observed=f"in {run.label} philosopher {who}'s meals were eaten in {len(threads)} threads "
            f"({brief(sorted({c.thread for c in calls}), 80)})",
            expected=expected, hint=ONE_THREAD_HINT,
        )
        expect(
            calls[0].tid != run.caller_tid,
            observed=f"in {run.label} the thread that called dine() called eat({who}) itself",
            expected=expected, hint=ONE_THREAD_HINT,
        )
        by_thread.setdefault(next(iter(threads)), []).append(who)
    # The system reuses the ident of a finished thread: philosophers eating under one ident are one thread when
    # their meals interleave (the first was still alive), or when fewer threads of that ident were ever started.
    started: dict[tuple[int, int], int] = {}
    for thread in run.child_threads():
        started[(thread.pid, thread.ident)] = started.get((thread.pid, thread.ident), 0) + 1
    for key, sharing in by_thread.items():
        if len(sharing) < 2:
            continue
        ordered = sorted(sharing, key=lambda who: eats[who][0].start)
        name = eats[ordered[0]][0].thread
        for before, after in zip(ordered, ordered[1:]):
            expect(
                eats[before][-1].start < eats[after][0].start,
                observed=f"in {run.label} one thread, {name}, called eat({before}) and eat({after}) turn by turn",
                expected=expected, hint=ONE_THREAD_HINT,
            )
        expect(
            started.get(key, 0) >= len(sharing),
            observed=f"in {run.label} one thread, {name}, ate the meals of philosophers "
            f"{', '.join(map(str, ordered))}, one after the other",
            expected=expected, hint=ONE_THREAD_HINT,
        )


@pytest.mark.points(1)
def test_each_fork_is_a_lock(submission: Submission) -> None:
    """The forks (the locks each philosopher held at every meal) are threading.Lock objects, not RLocks."""
    run = _dine(submission)
    forks = _forks(run, TABLE[0])
    names = _fork_names(run, forks)
    creations = lock_creations(run)
    for key in sorted(set().union(*forks.values())):
        made = creations.get(key)
        if made is None:
            continue  # not recorded (a lock made beyond the first 100 of a process): nothing to judge
        threading_made = key.startswith("th:")  # a threading primitive's identity; others are multiprocessing ones
        if made.kind == "Lock" and threading_made:
            continue
        shown = ("a Condition (its own RLock)" if made.kind == "Condition"
                 else f"a {'threading' if threading_made else 'multiprocessing'}.{made.kind}")
        sharers = " and ".join(str(who) for who in range(TABLE[0]) if key in forks[who])
        fail(
            f"in {run.label} {names.get(key, key)}, held by philosopher(s) {sharers} at every meal, is {shown} "
            f"made at {made.file} line {made.line}",
            "each fork a threading.Lock",
            "create the forks with `forks = [threading.Lock() for _ in range(n)]`, plain locks, not RLock or "
            "another kind",
        )


@pytest.mark.points(1)
def test_every_thread_joined(submission: Submission) -> None:
    """dine() runs the philosophers at the same time, in threads of its own process, and joins every one before returning."""
    run = _dine(submission)
    if run.child_processes():
        fail(
            f"{run.label} started {len(run.child_processes())} process(es) with multiprocessing",
            "philosophers are threading.Thread threads sharing threading.Lock forks",
            "use threading.Thread: a process gets its own copy of the forks, which excludes nobody",
        )
    expect_threads_joined(
        run, "dine()",
        join_expected="dine() calls join() on every philosopher before it returns",
        join_hint="keep the Thread objects in a list and join each one before returning the meal counts",
    )
    threads = run.child_threads(pid=run.main_pid)
    together = max_overlap((t.started, t.joined if t.joined is not None else float("inf")) for t in threads)
    expect(
        len(threads) < 2 or together >= 2,
        observed=f"{run.label} ran its philosophers one after another: each thread was joined before the next "
        "one was started, so at most one philosopher was ever at the table",
        expected="the philosophers' threads run at the same time: every one started, then all of them joined",
        hint="a join() inside the loop that starts the threads waits for each philosopher to finish before the "
        "next sits down; start them all in one loop, then join them in a second",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing philosophers.py prints nothing and starts no thread or process."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="put the call to dine() under `if __name__ == \"__main__\":`",
        within=lambda: _dine_defaults(submission, allow_error=True),
    )
