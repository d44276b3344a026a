"""Ready-made checks that several assignments share. Runs in the pytest process.

Each assignment's check file calls them from its own checks (with its own
points, title and, where they differ, its own words):

- :func:`expect_no_import_side_effects`: importing the student's module prints
  nothing and starts no process or thread (every bundled assignment);
- :func:`expect_children_joined`: the function started child processes, joined
  each, each exited 0, and left nothing running;
- :func:`expect_greeting` and :func:`expect_sleeps_for_delay`: the
  ``hello(n, delay)`` function hello_threads and hello_processes both ask for
  (sleep ``delay`` seconds, then print ``[n] Hello!``; :data:`GREETING` is the
  line's pattern);
- :func:`expect_hello_calls` and :func:`expect_random_delays`: what their
  ``main(count=10, delay=None)`` hands each thread or process, judged from the
  traced ``hello`` calls (``delay`` passed on, ``0`` included; a new
  ``random.randint(1, 3)`` per greeting when ``delay`` is ``None``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from grader.checks.expect import expect, fail
from grader.checks.submission import Submission
from grader.evidence.lockorder import blocked_cycle, order_cycles, stayed_open
from grader.evidence.locks import unrecorded
from grader.evidence.run import Call, Run

__all__ = [
    "GREETING",
    "expect_children_joined",
    "expect_greeting",
    "expect_hello_calls",
    "expect_no_import_side_effects",
    "expect_no_lock_order_cycle",
    "expect_random_delays",
    "expect_sleeps_for_delay",
]

IMPORT_EXPECTED = "importing the module only defines functions"
IMPORT_HINT = 'keep code that runs things under `if __name__ == "__main__":`'


def expect_no_import_side_effects(
    submission: Submission,
    *,
    expected: str = IMPORT_EXPECTED,
    hint: str = IMPORT_HINT,
    timeout: float = 8,
    within: Callable[[], Run] | None = None,
) -> None:
    """Importing the student's module prints nothing and starts no process or thread.

    Under ``spawn`` every child re-imports the module, so code at module level
    runs again in each. The message names what the import did
    (``importing x.py started 2 process(es) and printed ['hi']``); ``expected``
    and ``hint`` are the assignment's words.

    ``within``: a shared run that other checks make anyway, made with ``allow_error=True``
    (``lambda: submission.shared_call("run", ..., allow_error=True)``). Every run imports the
    module first, so the import is judged from that run, up to the end of its import, and the
    check costs no sandbox of its own; how the call after it ended does not count. Without it,
    a run that only imports the module (``timeout`` seconds at most).
    """
    if within is None:
        run = submission.import_module(timeout=timeout)
        problems = run.import_side_effects()
    else:
        run = within()
        if run.raw.refused or run.phase_time("imported") is None:  # untrusted, or the import raised or never ended
            submission.require_returned(
                Run(run.raw, label=f"import {submission.assignment.module}", module_file=run.module_file,
                    timeout=run.timeout)
            )
        problems = run.import_side_effects(until_imported=True)
    expect(
        not problems,
        observed=f"importing {submission.assignment.module_file} " + " and ".join(problems),
        expected=expected,
        hint=hint,
    )

GREETING = re.compile(r"^\[(\d+)\] Hello!$")
"""One greeting line; group 1 is ``n``."""


SHORT_HELLO = (1, 0.1)
"""``hello(n, delay)`` of the run that the greeting check and the delay check share."""
LONG_HELLO = (2, 1.2)
"""The delay check's second call: long enough that a fixed sleep is told from ``delay``."""


def _short_hello(submission: Submission) -> Run:
    """``hello(1, 0.1)``, run once for the greeting check and the delay check (one sandbox, not two)."""
    return submission.shared_call("hello", *SHORT_HELLO, timeout=8)


def expect_greeting(submission: Submission) -> None:
    """``hello(1, 0.1)`` prints exactly one line, ``[1] Hello!`` (the run :func:`expect_sleeps_for_delay` times)."""
    run = _short_hello(submission)
    lines = run.stdout_lines()
    expect(
        lines == ["[1] Hello!"],
        observed=f"hello(1, 0.1) printed {lines!r}",
        expected="exactly one line: '[1] Hello!'",
        hint="print(f\"[{n}] Hello!\") - mind the brackets, the space and the exclamation mark",
    )


def expect_sleeps_for_delay(submission: Submission) -> Run:
    """``hello(1, 0.1)`` and ``hello(2, 1.2)`` each take about their delay; returns the run of the second.

    The first is the run of :func:`expect_greeting`, made once for both checks.
    """
    short = _short_hello(submission)
    long = submission.call("hello", *LONG_HELLO, timeout=8)
    d_short, d_long = short.duration or 0.0, long.duration or 0.0
    expect(
        d_short >= 0.09 and d_long >= 1.15 and d_long - d_short >= 0.8 and d_long < 1.2 + 3.0,
        observed=f"hello(1, 0.1) took {d_short:.2f} s and hello(2, 1.2) took {d_long:.2f} s",
        expected="each call sleeps about `delay` seconds (0.1 s and 1.2 s)",
        hint="call time.sleep(delay) with the delay argument, not a fixed number of seconds",
    )
    return long


def _hello_args(call: Call) -> tuple[Any, Any]:
    """``(n, delay)`` of one traced ``hello`` call, given by position or by name."""
    n = call.args[0] if call.args else call.kwargs.get("n")
    delay = call.args[1] if len(call.args) > 1 else call.kwargs.get("delay")
    return n, delay


def _is_number(value: Any) -> bool:
    return type(value) in (int, float)


def _same_call(got: tuple[Any, Any], want: tuple[int, float]) -> bool:
    """``hello(n, delay)`` with exactly the number ``n`` and a delay equal to the one wanted (``0`` and ``0.0`` alike)."""
    return type(got[0]) is int and got[0] == want[0] and _is_number(got[1]) and got[1] == want[1]


def _unmatched(got: list[tuple[Any, Any]], wanted: list[tuple[int, float]]) -> tuple[list[Any], list[Any]]:
    """The calls wanted that were not made, and the calls made that were not wanted (multisets)."""
    missing = list(wanted)
    extra = []
    for pair in got:
        match = next((index for index, want in enumerate(missing) if _same_call(pair, want)), None)
        if match is None:
            extra.append(pair)
        else:
            missing.pop(match)
    return missing, extra


def expect_hello_calls(calls: Sequence[Call], mains: Sequence[tuple[int, float]], *, worker: str) -> None:
    """Fail unless ``calls`` (traced ``hello`` calls) are ``hello(i, delay)`` once per ``i < count`` of each main.

    ``mains`` lists the ``(count, delay)`` of the ``main`` calls the run made;
    ``worker`` is "thread" or "process", for the message. An explicit
    ``delay=0`` replaced by a random one (``delay or random.randint(1, 3)``)
    gets its own hint.
    """
    label = " and ".join(f"main(count={count}, delay={delay!r})" for count, delay in mains)
    got = [_hello_args(call) for call in calls]
    wanted = [(i, delay) for count, delay in mains for i in range(count)]
    missing, extra = _unmatched(got, wanted)
    if not missing and not extra:
        return
    shown = ", ".join(f"({n!r}, {d!r})" for n, d in sorted(got, key=repr)[:10]) + (", ..." if len(got) > 10 else "")
    zero_lost = any(d == 0 for _, d in missing) and any(_is_number(d) and d >= 1 for _, d in extra)
    fail(
        f"{label} called hello(n, delay) with " + (shown if got else "nothing"),
        " and ".join(f"hello(i, {delay!r}) once for each i from 0 to {count - 1}" for count, delay in mains)
        + f": each {worker} gets its number and main's own delay",
        "delay=0 is a delay like any other: `delay or random.randint(1, 3)` replaces it with a random one; draw "
        "a random delay only when `delay is None`"
        if zero_lost
        else f"pass the loop index and main's delay on to each {worker}: target=hello, args=(i, delay); draw a "
        "random delay only when delay is None",
    )


def expect_random_delays(calls: Sequence[Call], *, worker: str, count: int = 10) -> list[Any]:
    """Fail unless ``main()`` with its defaults made ``count`` hello calls, each with a whole delay from 1 to 3.

    Returns the delays, in the order of the calls, for the caller's check that
    they are not all the same (which only a seeded run can judge without luck).
    """
    expect(
        len(calls) == count,
        observed=f"main() called hello {len(calls)} time(s)",
        expected=f"{count} calls, one per {worker} (count defaults to {count})",
        hint=f"def main(count=10, delay=None): and one {worker} running hello(i, d) per i in range(count)",
    )
    delays = [_hello_args(call)[1] for call in calls]
    wrong = [d for d in delays if type(d) is not int or not 1 <= d <= 3]
    expect(
        not wrong,
        observed=f"main() gave hello the delays {delays!r}",
        expected="each delay a whole number of seconds from 1 to 3, from random.randint(1, 3)",
        hint="when delay is None, use d = random.randint(1, 3) instead of passing None on"
        if None in wrong
        else "with delay=None, each greeting sleeps random.randint(1, 3) seconds: a whole number from 1 to 3",
    )
    return delays


def expect_children_joined(
    run: Run,
    function: str,
    *,
    wanted: str,
    start_hint: str,
    join_expected: str,
    join_hint: str,
    exit_expected: str = "every child exits with code 0",
    exit_hint: str = "an exception in the child ends it with code 1; its error output shows where",
    alive_hint: str = "join every process you start",
) -> None:
    """Fail unless ``function`` started child processes, joined each, each exited 0, and left nothing running.

    ``wanted`` says what children were expected (shown when there are none);
    the ``*_expected`` and ``*_hint`` texts are the assignment's words for each
    failure. Leftovers are processes alive when ``function`` returned, or the
    student's processes the sandbox found at the end (not multiprocessing's own
    helpers).
    """
    children = run.child_processes(parent=run.main_pid)
    if not children:
        threads = run.child_threads(pid=run.main_pid)
        fail(
            f"{function} started no multiprocessing.Process"
            + (f" (it started {len(threads)} thread(s) instead)" if threads else ""),
            wanted,
            start_hint,
        )
    for child in children:
        expect(
            child.joined is not None,
            observed=f"process {child.name} (target {child.target}) was never joined",
            expected=join_expected,
            hint=join_hint,
        )
        killed = f" (killed by signal {-child.exitcode})" if child.exitcode is not None and child.exitcode < 0 else ""
        expect(
            child.exitcode == 0,
            observed=f"process {child.name} (target {child.target}) exited with code {child.exitcode}{killed}",
            expected=exit_expected,
            hint=exit_hint,
        )
    alive = run.processes_alive_at_return() or run.student_leftovers()
    expect(
        not alive,
        observed=f"{len(alive)} process(es) still running when {function} returned",
        expected="no child process left running",
        hint=alive_hint,
    )


def expect_threads_joined(
    run: Run,
    function: str,
    *,
    join_expected: str,
    join_hint: str,
    alive_hint: str = "join every thread you start",
) -> None:
    """Fail unless every thread ``function`` started in the run's first process was joined, and none still ran at its return.

    A thread never joined is named (and said to be a daemon when it was one); ``join_expected`` and
    ``join_hint`` are the assignment's words for it. Threads still alive when ``function`` returned
    are counted and the first four named.
    """
    for thread in run.child_threads(pid=run.main_pid):
        if thread.joined is None:
            fail(
                f"{run.label} never joined thread {thread.name}" + (" (a daemon thread)" if thread.daemon else ""),
                join_expected,
                join_hint,
            )
    alive = run.threads_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} thread(s) still running when {function} returned: "
        + ", ".join(str(t.get("name")) for t in alive[:4]),
        expected="no thread left running",
        hint=alive_hint,
    )


def expect_no_lock_order_cycle(
    run: Run,
    *,
    expected: str = "the locks are always taken in an order that can never close a cycle",
    hint: str = (
        "give the locks one global order and always take them in it, or take them all under one "
        "guard lock, or try the second one without blocking and back off"
    ),
    names: dict[str, str] | Callable[[Run], dict[str, str]] | None = None,
    provoke: Callable[[], Run] | None = None,
) -> None:
    """Fail unless the run's lock-order graph has no cycle that could close (:mod:`grader.evidence.lockorder`).

    Judged on every run, whether or not this one deadlocked; the message names
    each thread of the cycle, the locks it took and the lines. ``names`` maps
    lock identities to the student's names for them (``{key: "fork 3"}``), or is
    a function that finds them in a run.

    ``provoke`` runs the same code again with the ``close_cycles`` probe (each
    thread about to take a lock while holding another pauses until every other
    thread is paused or waiting). It is called only when the graph has a cycle
    and this run did not deadlock: when that run keeps every cycle open
    (:func:`grader.evidence.lockorder.stayed_open`), something the graph does
    not see prevents it (a monitor's own state) and the check passes; when it
    deadlocks, the message shows the threads stuck in their circle.
    """
    cycles = order_cycles(run)
    if not cycles:
        dropped = unrecorded(run, "lock operations")
        if dropped:  # fail closed: the edges not recorded may close a cycle
            pid, count = min(dropped.items())
            fail(
                f"process pid {pid} made more kinds of lock operation (lock, locks already held, line, thread) than the "
                f"probe records, and {count} of its operations were not recorded, so the order its locks were taken "
                "in cannot be checked",
                expected,
                "take fewer kinds of locks in fewer places (a lock made for every operation cannot be followed), "
                "then " + hint,
            )
        return
    observed = cycles[0].describe(run, names(run) if callable(names) else names)
    if provoke is not None and blocked_cycle(run) is None:
        provoked = provoke()
        if stayed_open(provoked):
            return
        stuck = blocked_cycle(provoked)
        if stuck is not None:
            observed += (
                ". Run again with each thread paused just before a lock it takes while holding another, until every "
                f"other thread was paused or waiting, it deadlocked: {len(stuck.steps)} threads each waited for a lock "
                f"the next one held ({stuck.steps[0].where()})"
            )
    fail(observed, expected, hint)
