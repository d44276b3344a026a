"""sum_of_squares is right with two workers."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_sum_of_squares(submission: Submission) -> None:
    """sum_of_squares(8, workers=2) returns 140."""
    run = submission.call("sum_of_squares", 8, workers=2)
    expect(
        run.value == 140,
        observed=f"sum_of_squares(8, workers=2) returned {run.value!r}",
        expected="140",
        hint="map square over range(n) with the pool and add the results",
    )
