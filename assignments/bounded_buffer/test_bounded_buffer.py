"""Checks for bounded_buffer: a fixed-size buffer of producer and consumer threads (see README.md).

Two recorded runs are judged by most checks: ``alone`` (drivers.py) drives one
``BoundedBuffer(3)`` step by step from helper threads, and one ``run(...)`` with
small capacity and several producers and consumers. Both record every traced
``put``/``get`` call with the value it returned, every use of the buffer's
attributes with the locks the thread held and the storage's length, and every
acquisition and wait of a ``threading`` primitive. Nothing is judged from timings:
a missing lock, a spinning wait or a buffer that holds one item too many is caught
from what the threads did, on every run.

Whether ``run(...)`` gets stuck can be luck (a ``notify()`` that wakes a thread of
the wrong kind deadlocks it on some runs); ``run(2, 3, 10, 1)`` is run with woken
threads held back until the others ran (the ``late_wakeups`` probe), where such
code gets stuck on every run, and the checks that need a run to return judge both.
The checks of what the threads did judge the larger run as far as it went.
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
    expect_threads_joined,
    fail,
    same,
    sequence_problem,
)
from grader.evidence import Call, Ending, Run
from grader.evidence.lockorder import pauses
from grader.evidence.locks import accesses, acquisitions, lockset
from grader.evidence.waiting import activity

MODULE = "bounded_buffer.py"
CAPACITY = 3  # of the buffer the `alone` driver works with
RUN = {"producers": 3, "consumers": 2, "items": 25, "capacity": 2}
PARAMETERS = ("producers", "consumers", "items", "capacity")
SMALL = (2, 3, 10, 1)  # run(...) called positionally: every value distinct, so their order shows
DEFAULTS = (2, 2, 100, 4)
TRACE = ["BoundedBuffer.put", "BoundedBuffer.get"]
WATCH = ["BoundedBuffer"]
ALONE_TIMEOUT = 40  # a put and get that poll cost the driver up to 3 s of looking each; a hang costs this
RUN_TIMEOUT = 20
LONG_CALL = 0.2  # seconds: a put/get of the `alone` run this long had to wait (the driver leaves waiters 0.3 s)
SPIN_OPERATIONS = 10  # recorded operations in a window with no wait: a thread that kept polling
WHILE_HINT = (
    "wait in a loop: `while len(self.items) >= self.capacity: self.cond.wait()` (and `while not self.items:` in "
    "get); the condition must be checked again after every wake-up, because another thread may have run first"
)
LATE_NOTE = (
    "In that run, each thread woken in Condition.wait() took the lock back only after the other threads had run "
    "(the threads one notify_all() woke in turn): an order the scheduler can also take by itself, so the same can "
    "happen on any run. After every wake-up, check the condition again: " + WHILE_HINT.removeprefix("wait in a loop: ")
)
LOCK_HINT = (
    "keep every use of the list or deque inside `with self.cond:` (or the one Lock beside the semaphores), "
    "len() checks included"
)


def _alone(submission: Submission) -> Run:
    return submission.shared_drive(
        "alone", CAPACITY, trace=TRACE, watch=WATCH, probes=["locks"], timeout=ALONE_TIMEOUT,
        label=f"BoundedBuffer({CAPACITY}) driven from helper threads",
    )


def _run(submission: Submission) -> Run:
    """run(3, 2, 25, 2), for a check that needs it to return."""
    run = _recorded(submission)
    submission.require_returned(run)
    return run


def _recorded(submission: Submission) -> Run:
    """run(3, 2, 25, 2) however it ended: every put, get and use of the storage, with the locks held.

    Made with the two probes that hold threads back where a race would show (each pause lasts until every other
    thread is paused or waiting): ``late_wakeups`` (a woken thread takes its lock back last) and ``unlocked_uses``
    (a thread about to use the storage holding no lock waits for the others, and they go on together). A put that
    checks for room under the lock but appends after it lets every producer in, and the storage holds more than
    `capacity` on every run, not only when the scheduler happens to interleave them so.
    """
    return submission.shared_call("run", trace=TRACE, watch=WATCH, probes=["late_wakeups", "unlocked_uses"],
                                  timeout=RUN_TIMEOUT, allow_error=True, **RUN)


def _as_far_as_it_went(submission: Submission) -> Run:
    """run(3, 2, 25, 2), for a check of what its threads did: judged as far as it went when it got stuck.

    Whether this run gets stuck can be luck (a notify() that wakes a thread of the wrong kind deadlocks it on some
    runs only); that it can is shown on every run by the small run (:func:`_small`), whose checks fail. The checks of
    what the threads did (their order, their locks, the storage's size, threads or processes) judge what was
    recorded until the grader stopped the run, so that their verdict does not depend on it. Any other way of not
    returning fails them as it ended, and so does a stuck run that recorded nothing to judge (:func:`_stuck`).
    """
    run = _recorded(submission)
    ending = run.ending()
    if ending is not None and ending.kind != Ending.TIMED_OUT:
        submission.require_returned(run)
    return run


def _stuck(submission: Submission, run: Run) -> None:
    """Fail the check with the run's hang if it got stuck: what it recorded is not enough to judge."""
    submission.require_returned(run)


def _small(submission: Submission, *, allow_error: bool = False) -> Run:
    """run(2, 3, 10, 1), positionally, with the buffer's creation traced (its capacity); the import check's too.

    Run with the ``late_wakeups`` probe: a thread woken in ``Condition.wait`` takes the lock back only once the
    other threads have run, so that a wait under ``if`` finds the buffer full or empty again on every run (three
    consumers and a capacity of one: every ``notify_all`` wakes several), not only when the scheduler happens to
    do the same. A correct wait, in a loop, waits again.
    """
    run = submission.shared_call(
        "run", *SMALL, trace=[*TRACE, "BoundedBuffer.__init__"], probes=["late_wakeups"], timeout=RUN_TIMEOUT,
        allow_error=True,
    )
    if not allow_error:
        try:
            submission.require_returned(run)
        except CheckTimedOut as stuck:
            held_back = pauses(run)
            if held_back.quiet or held_back.cut:  # a thread woke in a Condition's wait, and was held back
                raise CheckTimedOut(f"{stuck.message} {LATE_NOTE}", stuck.diagnostics) from None
            raise
    return run


def _items(producers: int, items: int) -> list[tuple[int, int]]:
    return [(p, k) for p in range(producers) for k in range(items)]


def _is_item(value: Any) -> bool:
    """A produced item (p, k); anything else that went through the buffer is a control value."""
    return type(value) is tuple and len(value) == 2 and all(type(v) is int for v in value)


def _said(report: dict[str, Any]) -> str:
    """What the call the driver reported did: 'returned X' or 'raised E'."""
    if report.get("error"):
        return f"raised {brief(report['error'], 120)}"
    return f"returned {brief(report.get('value'))}"


_ALONE_PROBLEMS: dict[str, tuple[str, str, str]] = {
    "put_blocked": (
        "put() number {n} on a BoundedBuffer({c}) holding {held} item(s) did not return within 5 s",
        "put() returns at once while the buffer holds fewer than `capacity` items",
        "wait only while the buffer is full: while len(self.items) >= self.capacity",
    ),
    "put_did_not_wait": (
        "put() on a full BoundedBuffer({c}) (holding {c} items, no get() called) {said} without waiting",
        "put() waits while the buffer holds `capacity` items",
        "wait while len(self.items) >= self.capacity before appending (`>=`, not `>`)",
    ),
    "put_woke_full": (
        "put() waiting on a full BoundedBuffer({c}) {said} after the grader called notify_all() on the "
        "Condition it waited in, although the buffer was still full",
        "after every wake-up put() checks again and goes on waiting while the buffer is full",
        WHILE_HINT,
    ),
    "put_stayed_blocked": (
        "put() waiting on a full BoundedBuffer({c}) was still waiting 5 s after get() had taken an item",
        "get() wakes a waiting producer once it made room, and the producer's put() returns",
        "after removing an item, notify the Condition producers wait in (or release the free-slots semaphore)",
    ),
    "get_stuck": (
        "get() on a BoundedBuffer({c}) holding items did not return within 5 s",
        "get() returns at once while the buffer holds items",
        "wait in get() only while the buffer is empty: while not self.items",
    ),
    "get_did_not_wait": (
        "get() on an empty BoundedBuffer({c}) {said} without waiting for an item",
        "get() waits while the buffer is empty, then returns the item another thread puts",
        "wait while not self.items before taking an item; do not return None or raise when it is empty",
    ),
    "get_woke_empty": (
        "get() waiting on an empty BoundedBuffer({c}) {said} after the grader called notify_all() on the "
        "Condition it waited in, with nothing put",
        "after every wake-up get() checks again and goes on waiting while the buffer is empty",
        WHILE_HINT,
    ),
    "get_stayed_blocked": (
        "get() waiting on an empty BoundedBuffer({c}) was still waiting 5 s after another thread put ('b', 0)",
        "put() wakes a waiting consumer, whose get() returns the item",
        "after appending, notify the Condition consumers wait in (or release the items semaphore)",
    ),
}


def _expect_fifo(report: dict[str, Any]) -> None:
    first, rest = report.get("first"), report.get("rest")
    expect(
        same(first, ("a", 0)),
        observed=f"after put() of ('a', 0) ... ('a', {CAPACITY}) (the last one waiting), the first get() "
        f"returned {brief(first)}",
        expected="('a', 0), the oldest item",
        hint="FIFO: append new items at the end and take the oldest from the front (deque.popleft() or pop(0))",
    )
    wanted = [("a", k) for k in range(1, CAPACITY + 1)]
    problem = sequence_problem(rest, wanted)
    expect(
        problem is None,
        observed=f"the next {CAPACITY} get() calls returned {problem}",
        expected=f"{brief(wanted, 80)}: the items in the order they were put",
        hint="FIFO: append new items at the end and take the oldest from the front (deque.popleft() or pop(0))",
    )
    late = report.get("late")
    expect(
        same(late, ("b", 0)),
        observed=f"get() waiting on the empty buffer returned {brief(late)} once ('b', 0) was put",
        expected="('b', 0), the item another thread put",
        hint="return the item you removed from the buffer",
    )


@pytest.mark.points(3)
@pytest.mark.timeout(ALONE_TIMEOUT + 10)
def test_put_and_get_alone_keep_fifo_and_wait(submission: Submission) -> None:
    """put/get alone keep FIFO order; put waits while full, get while empty, each until another thread makes way."""
    run = _alone(submission)
    report = run.value if isinstance(run.value, dict) else {}
    outcome = report.get("outcome")
    if outcome in ("put_raised", "get_raised"):
        fail(
            f"{outcome.split('_')[0]}() on a BoundedBuffer({CAPACITY}) raised {brief(report.get('error'), 160)}",
            "put(item) and get() of the BoundedBuffer class work from any thread",
            "look at the error's line in your class; run a small test of your own with two threads",
        )
    if outcome in _ALONE_PROBLEMS:
        observed, expected, hint = _ALONE_PROBLEMS[outcome]
        held = report.get("held") if type(report.get("held")) is int else 0
        fail(observed.format(c=CAPACITY, n=held + 1, held=held, said=_said(report)), expected, hint)
    expect(outcome == "ok", observed=f"the grader's driver reported {brief(outcome)}", expected="ok",
           hint="run the class on your own with two threads")
    _expect_fifo(report)


def _gets_by_thread(run: Run) -> dict[tuple[int, int], list[Call]]:
    by_thread: dict[tuple[int, int], list[Call]] = {}
    for call in sorted(run.calls("BoundedBuffer.get"), key=lambda c: c.start):
        by_thread.setdefault((call.pid, call.tid), []).append(call)
    return by_thread


@pytest.mark.points(2)
@pytest.mark.timeout(2 * RUN_TIMEOUT + 10)
def test_run_returns_each_item_once(submission: Submission) -> None:
    """run() returns every produced item exactly once, and no sentinel, for two sizes of run."""
    small = dict(zip(PARAMETERS, SMALL))
    for run, args in ((_run(submission), RUN), (_small(submission), small)):
        wanted = _items(args["producers"], args["items"])
        value = run.value
        if type(value) is not list:
            fail(f"{run.label} returned {brief(value)}", "a list of the items the consumers took",
                 "collect the items the consumers get into a list and return it after joining the threads")
        ordered = sorted(value, key=repr)
        problem = sequence_problem(ordered, sorted(wanted, key=repr))
        expect(
            problem is None,
            observed=f"{run.label} returned {problem}",
            expected=f"each of the {len(wanted)} items (p, k) exactly once, in any order, and nothing else",
            hint="every consumer adds each item it gets (not the sentinel) to the result; stop the consumers only "
            "once every item was taken: one sentinel per consumer after joining the producers, or a shared count",
        )


@pytest.mark.points(2)
def test_each_consumer_gets_each_producers_items_in_order(submission: Submission) -> None:
    """Within run(), every consumer thread got each producer's items in increasing order (from its get() calls)."""
    run = _as_far_as_it_went(submission)
    by_thread = _gets_by_thread(run)
    if not by_thread:
        _stuck(submission, run)
    expect(
        by_thread,
        observed=f"{run.label} never called BoundedBuffer.get()",
        expected="the consumers take every item with buffer.get()",
        hint="consumer threads call get() on the one BoundedBuffer that run() created",
    )
    for calls in by_thread.values():
        last: dict[int, int] = {}
        for call in calls:
            value = call.value
            if not _is_item(value):
                continue  # a sentinel or another control value
            producer, k = value
            if producer in last and k <= last[producer]:
                thread = calls[0].thread
                fail(
                    f"in {run.label}, thread {thread} got {brief(value)} from get() after ({producer}, "
                    f"{last[producer]})",
                    f"each consumer gets the items of producer {producer} in increasing order, as FIFO keeps them",
                    "get() must return the oldest item: take from the front of the deque (popleft()), append at the "
                    "back",
                )
            last[producer] = k


def _made(run: Run) -> tuple[int, int, int, Any]:
    """What run() made: (producers, consumers, items, capacity), from its puts, threads and BoundedBuffer(...).

    Producers are told by the p of the items (p, k) put, items by the most any producer put; the other
    threads run started (every start counted, idents being reused) are its consumers; capacity is what
    the first BoundedBuffer was made with.
    """
    counts: dict[int, int] = {}
    for call in run.calls("BoundedBuffer.put"):
        if call.args and _is_item(call.args[0]):
            counts[call.args[0][0]] = counts.get(call.args[0][0], 0) + 1
    started = len(run.child_threads(pid=run.main_pid))
    inits = sorted(run.calls("BoundedBuffer.__init__"), key=lambda c: c.start)
    capacity = (inits[0].args[0] if inits[0].args else inits[0].kwargs.get("capacity")) if inits else None
    return len(counts), started - len(counts), max(counts.values(), default=0), capacity


@pytest.mark.points(1)
@pytest.mark.timeout(2 * RUN_TIMEOUT + 10)
def test_run_defaults_and_parameter_order(submission: Submission) -> None:
    """run(2, 3, 10, 1) takes producers, consumers, items, capacity in this order; run() uses 2, 2, 100, 4."""
    defaults = submission.call("run", trace=[*TRACE, "BoundedBuffer.__init__"], timeout=RUN_TIMEOUT)
    for run, wanted, what, hint in (
        (_small(submission), SMALL, "the parameters taken in the order producers, consumers, items, capacity",
         "define it as `def run(producers=2, consumers=2, items=100, capacity=4):`, the parameters in this order"),
        (defaults, DEFAULTS, "run's defaults, for a call without arguments",
         "define it as `def run(producers=2, consumers=2, items=100, capacity=4):`"),
    ):
        made = _made(run)
        expect(
            made == wanted,
            observed=f"{run.label} made BoundedBuffer({brief(made[3])}), {made[0]} producer(s) put items (p, k), "
            f"up to {made[2]} each, and started {made[1]} consumer thread(s) (threads besides the producers)",
            expected=f"{', '.join(f'{name}={value}' for name, value in zip(PARAMETERS, wanted))}: {what}",
            hint=hint,
        )


def _sizes(run: Run) -> list[tuple[int, str]]:
    return [(a.size, a.where()) for a in accesses(run) if a.op == "use" and a.size is not None]


@pytest.mark.points(2)
@pytest.mark.timeout(ALONE_TIMEOUT + RUN_TIMEOUT + 10)
def test_never_more_than_capacity(submission: Submission) -> None:
    """The buffer's storage never held more than `capacity` items, alone and within run()."""
    for run, capacity in ((_alone(submission), CAPACITY), (_as_far_as_it_went(submission), RUN["capacity"])):
        sizes = _sizes(run)
        if not sizes:
            _stuck(submission, run)
        expect(
            sizes,
            observed=f"{run.label}: no list or deque attribute of the BoundedBuffer was ever used",
            expected="the buffer keeps its items in a list or collections.deque attribute (self.items, say)",
            hint="store the items in an attribute of the BoundedBuffer: self.items = collections.deque()",
        )
        biggest, where = max(sizes)
        expect(
            biggest <= capacity,
            observed=f"in {run.label} the buffer's storage held {biggest} items (seen at {where}), "
            f"for a capacity of {capacity}",
            expected=f"never more than {capacity} items",
            hint="put() must wait while len(self.items) >= self.capacity (`>=`, not `>`), checked under the lock "
            "and again after every wake-up",
        )


@pytest.mark.points(3)
@pytest.mark.timeout(ALONE_TIMEOUT + RUN_TIMEOUT + 10)
def test_storage_used_under_one_lock(submission: Submission) -> None:
    """Every access to the buffer's storage, in every thread, holds one lock common to all of them."""
    for run in (_as_far_as_it_went(submission), _alone(submission)):
        results = lockset(run, name="the buffer's storage")
        if not results:
            _stuck(submission, run)
        expect(
            results,
            observed=f"in {run.label} no attribute of the BoundedBuffer was used by two threads",
            expected="producers and consumers share one BoundedBuffer and its storage",
            hint="create one BoundedBuffer in run() and give it to every producer and consumer",
        )
        for result in results:
            expect(result.ok, observed=result.problem or "",
                   expected="every read and change of the storage made holding the buffer's one lock",
                   hint=LOCK_HINT)


@pytest.mark.points(2)
@pytest.mark.timeout(ALONE_TIMEOUT + 10)
def test_blocked_threads_wait_not_spin(submission: Submission) -> None:
    """A put on a full buffer and a get on an empty one wait in a Condition or semaphore; they do not poll."""
    run = _alone(submission)
    calls = [c for name in TRACE for c in run.calls(name) if c.end is not None and c.end - c.start >= LONG_CALL]
    expect(
        calls,
        observed=f"in {run.label} no put() or get() ever had to wait",
        expected="put() on a full buffer and get() on an empty one wait until another thread makes way",
        hint="see the check of put and get alone",
    )
    for call in calls:
        seen = activity(run, call.pid, call.tid, call.start, call.end)
        expect(
            seen.blocked or seen.operations < SPIN_OPERATIONS,
            observed=f"{call.func}() called on a {'full' if call.func.endswith('put') else 'empty'} buffer "
            f"{seen.describe()}",
            expected="a thread that cannot go on blocks in Condition.wait() (or Semaphore.acquire()) until notified",
            hint="replace the polling loop (sleep, or checking again and again) by self.cond.wait() inside "
            "`while ...:`, and notify the Condition when the buffer changes",
        )


@pytest.mark.points(1)
@pytest.mark.timeout(ALONE_TIMEOUT + 10)
def test_wakes_a_thread_that_can_go_on(submission: Submission) -> None:
    """With one Condition for producers and consumers, notify_all() is used (notify() may wake the wrong kind)."""
    run = _alone(submission)
    report = run.value if isinstance(run.value, dict) else {}
    single = [n for n in acquisitions(run, op="notify") if n.in_student_code]
    if report.get("one_condition") is True and single:
        where = single[0].where()
        fail(
            f"producers (in put) and consumers (in get) wait in the same Condition, and notify() at {where} wakes "
            "only one of its waiters, which may be a thread of the wrong kind: a producer woken by a producer goes "
            "back to waiting and the consumer that could go on is never woken, until every thread waits",
            "a notify that wakes a thread that can go on: notify_all() on a Condition both kinds wait in, or two "
            "Conditions (not_full, not_empty) on one lock, each notified for its own kind",
            "use self.cond.notify_all(), or wait in not_full in put and in not_empty in get",
        )


def _expect_threads(submission: Submission, run: Run) -> None:
    processes = run.child_processes()
    if processes:
        fail(
            f"{run.label} started {len(processes)} process(es) with multiprocessing",
            "producers and consumers are threading.Thread threads of the caller's process",
            "use threading.Thread: processes do not share the buffer object",
        )
    calls = [c for name in TRACE for c in run.calls(name)]
    elsewhere = [c for c in calls if c.pid != run.main_pid]
    expect(not elsewhere, observed=f"put()/get() ran in another process (pid {elsewhere[0].pid})" if elsewhere else "",
           expected="every put and get in the caller's process", hint="use threading.Thread, not processes")
    callers = {c.caller for c in calls if c.tid != run.caller_tid}  # a thread's ident may be reused by a later one
    wanted = RUN["producers"] + RUN["consumers"]
    if len(callers) < wanted:
        _stuck(submission, run)  # a run stopped early may not have reached every thread's first call
    expect(
        len(callers) >= wanted and not any(c.tid == run.caller_tid for c in calls if _is_item(c.value)),
        observed=f"{run.label} called put()/get() from {len(callers)} thread(s) other than the caller"
        + (", and moved items itself" if any(c.tid == run.caller_tid and _is_item(c.value) for c in calls) else ""),
        expected=f"{RUN['producers']} producer threads putting and {RUN['consumers']} consumer threads getting",
        hint="start one threading.Thread per producer and per consumer; run() itself only starts and joins them",
    )


@pytest.mark.points(1)
def test_threads_not_processes(submission: Submission) -> None:
    """Producers and consumers are threads of the caller's process, one per producer and per consumer."""
    _expect_threads(submission, _as_far_as_it_went(submission))


@pytest.mark.points(1)
@pytest.mark.timeout(2 * RUN_TIMEOUT + 10)
def test_every_thread_joined(submission: Submission) -> None:
    """run() joins every thread it starts; none is left running when it returns (two sizes of run)."""
    for run in (_run(submission), _small(submission)):
        expect_threads_joined(
            run, run.label,
            join_expected="run() calls join() on every producer and consumer before it returns",
            join_hint="keep the Thread objects in lists and join each one; stop the consumers first (a sentinel each, "
            "or a count), so that their join returns",
        )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing bounded_buffer.py prints nothing and starts no thread or process."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines the class and functions",
        hint="put the call to run() under `if __name__ == \"__main__\":`",
        within=lambda: _small(submission, allow_error=True),
    )
