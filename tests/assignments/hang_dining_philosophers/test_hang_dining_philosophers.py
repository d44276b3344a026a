"""dine(5, 3) returns the meals each philosopher ate, recorded with the lock probe."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_every_philosopher_eats(submission: Submission) -> None:
    """dine(5, 3) returns [3, 3, 3, 3, 3]."""
    run = submission.call("dine", 5, 3, probes=["locks"])
    expect(
        run.value == [3] * 5,
        observed=f"dine(5, 3) returned {run.value!r}",
        expected="[3, 3, 3, 3, 3]",
        hint="take the forks in an order that cannot close a circle",
    )
