"""answer() returns 42; squares(n) computes the squares in worker processes.

HIDDEN-CHECK-SECRET: 5f1c9a0e-hostile-token (a submission that can read this file could print it).
"""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(2)
def test_answer(submission: Submission) -> None:
    """answer() returns the int 42."""
    run = submission.call("answer")
    expect(
        type(run.value) is int and run.value == 42,
        observed=f"answer() returned {run.value!r}",
        expected="42",
        hint="return 42",
    )


@pytest.mark.points(1)
@pytest.mark.visibility("hidden")
def test_squares(submission: Submission) -> None:
    """squares(4) returns [0, 1, 4, 9]."""
    run = submission.call("squares", 4)
    expect(
        run.value == [0, 1, 4, 9],
        observed=f"squares(4) returned {run.value!r}",
        expected="[0, 1, 4, 9]",
        hint="square each number below n",
    )
