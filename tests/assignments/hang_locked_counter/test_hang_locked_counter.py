"""run counts exactly with three workers."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_run_counts_exactly(submission: Submission) -> None:
    """run(workers=3, times=50) returns 150."""
    run = submission.call("run", workers=3, times=50)
    expect(
        run.value == 150,
        observed=f"run(workers=3, times=50) returned {run.value!r}",
        expected="150",
        hint="increment under the lock, join every worker",
    )
