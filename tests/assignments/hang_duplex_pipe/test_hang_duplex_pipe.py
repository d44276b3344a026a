"""ping_pong answers large messages in order."""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect


@pytest.mark.points(1)
def test_ping_pong_large_messages(submission: Submission) -> None:
    """ping_pong returns one reply per 1 MB message, in order."""
    messages = [c * 1_000_000 for c in "abc"]
    run = submission.call("ping_pong", messages)
    replies = run.value if isinstance(run.value, list) else []
    expect(
        [r[1] if isinstance(r, tuple) and len(r) == 2 else None for r in replies] == messages,
        observed=f"ping_pong returned {len(replies)} reply(ies)",
        expected=f"{len(messages)} replies (pid, message), in order",
        hint="send a message, receive its reply, then send the next",
    )
