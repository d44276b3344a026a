"""Checks of the tiny greet assignment (tests of `grader mutants`)."""

from __future__ import annotations

import os
from pathlib import Path

from grader.checks import Submission, expect


def test_greets_times(submission: Submission) -> None:
    """greet("ann", 3) returns three greetings."""
    run = submission.call("greet", "ann", 3, timeout=8)
    expect(
        run.value == ["Hello, ann!"] * 3,
        observed=f"greet('ann', 3) returned {run.value!r}",
        expected="['Hello, ann!', 'Hello, ann!', 'Hello, ann!']",
        hint="append one greeting per time",
    )


def test_shouts(submission: Submission) -> None:
    """shout("ann") prints ANN!."""
    run = submission.call("shout", "ann", timeout=8)
    expect(run.stdout == "ANN!\n", observed=f"shout printed {run.stdout!r}", expected="'ANN!\\n'", hint="print it")


def test_default_sometimes(submission: Submission) -> None:
    """A check that catches a changed default on one grading of two only (GREET_FLAKY_STATE: a folder).

    It stands for a check that catches a bug by luck: of the gradings of a file whose default of
    ``times`` is 3, the first passes and every later one fails. Without GREET_FLAKY_STATE it checks nothing.
    """
    state = os.environ.get("GREET_FLAKY_STATE")
    source = submission.module_path.read_text(encoding="utf-8") if submission.module_path else ""
    if not state or "times=3" not in source:
        return
    try:
        os.close(os.open(Path(state) / "seen", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        expect(False, observed="the default of times is 3", expected="times=2", hint="keep the default")
