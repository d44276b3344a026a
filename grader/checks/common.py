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
  line's pattern).
"""

from __future__ import annotations

import re

from grader.checks.expect import expect, fail
from grader.checks.submission import Submission
from grader.evidence.lockorder import order_cycles
from grader.evidence.run import Run

__all__ = [
    "GREETING",
    "expect_children_joined",
    "expect_greeting",
    "expect_no_import_side_effects",
    "expect_no_lock_order_cycle",
    "expect_sleeps_for_delay",
]

IMPORT_EXPECTED = "importing the module only defines functions"
IMPORT_HINT = 'keep code that runs things under `if __name__ == "__main__":`'


def expect_no_import_side_effects(
    submission: Submission, *, expected: str = IMPORT_EXPECTED, hint: str = IMPORT_HINT, timeout: float = 8
) -> None:
    """Importing the student's module prints nothing and starts no process or thread.

    Under ``spawn`` every child re-imports the module, so code at module level
    runs again in each. The message names what the import did
    (``importing x.py started 2 process(es) and printed ['hi']``); ``expected``
    and ``hint`` are the assignment's words.
    """
    run = submission.import_module(timeout=timeout)
    problems = run.import_side_effects()
    expect(
        not problems,
        observed=f"importing {submission.assignment.module_file} " + " and ".join(problems),
        expected=expected,
        hint=hint,
    )

GREETING = re.compile(r"^\[(\d+)\] Hello!$")
"""One greeting line; group 1 is ``n``."""


def expect_greeting(submission: Submission) -> None:
    """``hello(3, 0)`` prints exactly one line, ``[3] Hello!``."""
    run = submission.call("hello", 3, 0, timeout=8)
    lines = run.stdout_lines()
    expect(
        lines == ["[3] Hello!"],
        observed=f"hello(3, 0) printed {lines!r}",
        expected="exactly one line: '[3] Hello!'",
        hint="print(f\"[{n}] Hello!\") - mind the brackets, the space and the exclamation mark",
    )


def expect_sleeps_for_delay(submission: Submission) -> Run:
    """``hello(1, 0.1)`` and ``hello(2, 1.2)`` each take about their delay; returns the run of the second."""
    short = submission.call("hello", 1, 0.1, timeout=8)
    long = submission.call("hello", 2, 1.2, timeout=8)
    d_short, d_long = short.duration or 0.0, long.duration or 0.0
    expect(
        d_short >= 0.09 and d_long >= 1.15 and d_long - d_short >= 0.8 and d_long < 1.2 + 3.0,
        observed=f"hello(1, 0.1) took {d_short:.2f} s and hello(2, 1.2) took {d_long:.2f} s",
        expected="each call sleeps about `delay` seconds (0.1 s and 1.2 s)",
        hint="call time.sleep(delay) with the delay argument, not a fixed number of seconds",
    )
    return long


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
        expect(
            child.exitcode == 0,
            observed=f"process {child.name} (target {child.target}) exited with code {child.exitcode}",
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


def expect_no_lock_order_cycle(
    run: Run,
    *,
    expected: str = "the locks are always taken in an order that can never close a cycle",
    hint: str = (
        "give the locks one global order and always take them in it, or take them all under one "
        "guard lock, or try the second one without blocking and back off"
    ),
    names: dict[str, str] | None = None,
) -> None:
    """Fail unless the run's lock-order graph has no cycle that could close (:mod:`grader.evidence.lockorder`).

    Judged on every run, whether or not this one deadlocked; the message names
    each thread of the cycle, the locks it took and the lines. ``names`` maps
    lock identities to the student's names for them (``{key: "fork 3"}``).
    """
    cycles = order_cycles(run)
    if cycles:
        fail(cycles[0].describe(run, names), expected, hint)
