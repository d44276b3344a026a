"""How a check says what went wrong. Runs in the pytest process.

A failed check tells the student three things: what was **observed**, what was
**expected**, and a **hint** of where to look. Raise :class:`CheckFailed` (or call
:func:`fail` / :func:`expect`) from a check; the plugin turns it into the
check's message. A run that hit its deadline raises :class:`CheckTimedOut`,
which the plugin reports with the status "timed out".
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["CheckFailed", "CheckTimedOut", "expect", "fail"]


class CheckFailed(AssertionError):
    """A check found a problem in the student's code."""

    def __init__(self, observed: str, expected: str = "", hint: str = "") -> None:
        self.observed = observed
        self.expected = expected
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        parts = [f"Observed: {self.observed}"]
        if self.expected:
            parts.append(f"Expected: {self.expected}")
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        return "\n".join(parts)


class CheckTimedOut(Exception):
    """The student's code did not finish within the check's time limit."""

    def __init__(self, message: str, diagnostics: str = "") -> None:
        self.message = message
        self.diagnostics = diagnostics
        super().__init__(message)


def fail(observed: str, expected: str = "", hint: str = "") -> NoReturn:
    """Fail the current check with a student-facing message."""
    raise CheckFailed(observed, expected, hint)


def expect(condition: object, *, observed: str, expected: str, hint: str = "") -> None:
    """Fail the current check unless ``condition`` is true."""
    if not condition:
        raise CheckFailed(observed, expected, hint)
