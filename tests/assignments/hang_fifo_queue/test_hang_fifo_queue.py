"""run_pipeline forwards large items in order and leaves nothing running."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_pipeline_large_items(submission: Submission) -> None:
    """run_pipeline returns large items in order, with every process joined."""
    items = [f"{i}:" + "x" * 100_000 for i in range(4)]
    run = submission.call("run_pipeline", items)
    got = run.value if isinstance(run.value, list) else []
    expect(
        run.value == items,
        observed=f"run_pipeline returned {len(got)} item(s)",
        expected=f"the {len(items)} items in order",
        hint="forward every item, then stop at the sentinel",
    )
    expect(
        not run.leftovers,
        observed=f"{len(run.leftovers)} process(es) were still running when run_pipeline returned",
        expected="both processes ended and joined",
        hint="join the producer and the consumer before returning",
    )
