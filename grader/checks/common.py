"""Checks of the ``hello(n, delay)`` greeting shared by hello_threads and hello_processes.

Both assignments ask for the same function: sleep ``delay`` seconds, then print
``[n] Hello!``. The checks of that function are written once here; each
assignment's check file calls them from its own checks (with its own points).
"""

from __future__ import annotations

import re

from grader.checks.expect import expect
from grader.checks.submission import Submission
from grader.evidence.run import Run

__all__ = ["GREETING", "expect_greeting", "expect_sleeps_for_delay"]

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
