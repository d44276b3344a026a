"""How a check says what went wrong, and small helpers to compare what was seen.

A failed check tells the student three things: what was **observed**, what was
**expected**, and a **hint** of where to look. Raise :class:`CheckFailed` (or call
:func:`fail` / :func:`expect`) from a check; the plugin turns it into the
check's message. A run that hit its deadline raises :class:`CheckTimedOut`,
which the plugin reports with the status "timed out".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

__all__ = [
    "CheckFailed",
    "CheckTimedOut",
    "expect",
    "fail",
    "first_difference",
    "line_problems",
    "max_overlap",
]


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


def first_difference(observed: Sequence[Any], expected: Sequence[Any]) -> str | None:
    """Describe the first place two sequences differ, or ``None`` if they are equal.

    Comparison is by exact type and value, so ``1`` does not stand for ``1.0``
    or ``True`` and an opaque student object never stands for a plain value.
    """

    def same(a: Any, b: Any) -> bool:
        return type(a) is type(b) and a == b

    for index, (got, want) in enumerate(zip(observed, expected)):
        if not same(got, want):
            return f"item {index} is {got!r} where {want!r} was expected"
    if len(observed) > len(expected):
        extra = observed[len(expected)]
        return f"{len(observed) - len(expected)} extra item(s) after the expected {len(expected)}, starting with {extra!r}"
    if len(observed) < len(expected):
        return (
            f"only {len(observed)} of {len(expected)} items; the first missing one is "
            f"{expected[len(observed)]!r}"
        )
    return None


def line_problems(observed: Iterable[str], expected: Iterable[str]) -> list[str]:
    """Compare printed lines as a multiset: missing, duplicated and unexpected lines."""
    got, want = Counter(observed), Counter(expected)
    problems = []
    for line, count in want.items():
        if got[line] < count:
            problems.append(f"missing {line!r}" + (f" ({count - got[line]} of {count})" if count > 1 else ""))
    for line, count in got.items():
        if line in want and count > want[line]:
            problems.append(f"{line!r} printed {count} times instead of {want[line]}")
        elif line not in want:
            problems.append(f"unexpected line {line!r}" + (f" ({count} times)" if count > 1 else ""))
    return problems


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals open at the same moment."""
    points = []
    for start, end in intervals:
        points.append((start, 1))
        points.append((end, -1))
    points.sort(key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best
