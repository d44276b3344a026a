"""main() returns "done": a run that waits but makes progress is never ended as deadlocked."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_main_returns_done(submission: Submission) -> None:
    """main() returns "done" (however long it waits first)."""
    run = submission.call("main")
    expect(
        run.value == "done",
        observed=f"main() returned {run.value!r}",
        expected="'done'",
        hint="wait for every helper, then return 'done'",
    )
