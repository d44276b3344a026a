"""Exact comparisons, and what says in words how what was observed differs from what was expected.

Runs in the pytest process. Values come back from a sandbox as plain data
(or :class:`grader.evidence.Opaque`, which equals nothing), so comparisons here
are by exact type as well as value:

- :func:`same` compares plain values exactly, all the way down (``(1, 0)`` is not
  ``(1, False)``, ``[1]`` is not ``(1,)``); :func:`same_items` two sequences item by item;
- :func:`first_difference` names the first place two sequences differ;
- :func:`line_problems` compares printed lines as a multiset (missing, duplicated, unexpected);
- :func:`sequence_problem` says how a returned sequence differs from the expected
  one, recognising the classic queue bugs (reversed, sorted, first item lost,
  sentinel included, items lost or duplicated);
- :func:`brief` shows a value in a message without copying a megabyte string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from grader.inside.wire import Opaque

__all__ = ["brief", "first_difference", "line_problems", "same", "same_items", "sequence_problem"]

_CONTAINERS = (list, tuple)


def same(a: Any, b: Any) -> bool:
    """Exact equality of plain values: same types at every level, equal values."""
    if type(a) is not type(b):
        return False
    if type(a) in _CONTAINERS:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b:
                return False
            twin = next(k for k in b if k == key)
            if not same(key, twin) or not same(value, b[twin]):
                return False
        return True
    if type(a) in (set, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if type(a) is Opaque:
        return False
    return bool(a == b)


def same_items(observed: Sequence[Any], expected: Sequence[Any]) -> bool:
    """Both sequences hold exactly the same items in the same order (see :func:`same`)."""
    return len(observed) == len(expected) and all(same(o, e) for o, e in zip(observed, expected))


def brief(value: Any, limit: int = 60) -> str:
    """A short repr for a message; long strings and bytes are summarised."""
    if type(value) in (str, bytes) and len(value) > limit:
        return f"a {type(value).__name__} of length {len(value)} starting {value[:12]!r}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(values: Sequence[Any], most: int = 3) -> str:
    shown = ", ".join(brief(v, 30) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def _unmatched(have: Sequence[Any], want: Sequence[Any]) -> list[Any]:
    """Items of ``want`` with no exact counterpart left in ``have`` (a multiset difference)."""
    pool = list(have)
    left = []
    for item in want:
        for index, candidate in enumerate(pool):
            if same(candidate, item):
                del pool[index]
                break
        else:
            left.append(item)
    return left


def sequence_problem(observed: Any, expected: Sequence[Any], *, sentinel: Any = None) -> str | None:
    """How ``observed`` differs from the list ``expected``, as a phrase, or ``None`` if it is exactly it.

    The phrase completes "... returned ...", for example "the items in reverse
    order (last in, first out)" or "4 of the 6 items: 'b', 3.5 are missing".
    """
    if type(observed) is not list:
        kind = type(observed).__name__ if not isinstance(observed, Opaque) else observed.type_name
        return f"{brief(observed)} (a {kind}) instead of a list"
    expected = list(expected)
    if same_items(observed, expected):
        return None
    return _classic_bug(observed, expected, sentinel) or _item_differences(observed, expected, sentinel)


def _classic_bug(observed: list[Any], expected: list[Any], sentinel: Any) -> str | None:
    """The classic queue bug ``observed`` shows (reversed, sorted, sentinel kept, end item lost), or ``None``."""
    count = len(expected)
    if count > 1 and same_items(observed, expected[::-1]):
        return "the items in reverse order (last in, first out)"
    try:
        ordered = sorted(expected)
    except TypeError:
        ordered = None
    if ordered is not None and count > 1 and not same_items(ordered, expected) and same_items(observed, ordered):
        return "the items sorted, not in the order they were put on the queue"
    if same_items(observed, [*expected, sentinel]):
        if not count:
            return f"[{sentinel!r}]: the sentinel, which is not an item"
        return f"every item and then the sentinel {sentinel!r}, which is not an item"
    if count and same_items(observed, expected[1:]):
        return f"every item but the first one ({brief(expected[0], 30)})"
    if count > 1 and same_items(observed, expected[:-1]):
        return f"every item but the last one ({brief(expected[-1], 30)})"
    return None


def _item_differences(observed: list[Any], expected: list[Any], sentinel: Any) -> str:
    """Which items are missing, unexpected or out of place (for a difference that is no classic bug)."""
    count = len(expected)
    missing = _unmatched(observed, expected)
    extra = _unmatched(expected, observed)
    head = f"{len(observed)} item(s) where {count} were expected" if len(observed) != count else f"{count} items"
    if not missing and not extra:
        for index, (got, want) in enumerate(zip(observed, expected)):
            if not same(got, want):
                return (
                    f"the right items in the wrong order: position {index} holds {brief(got, 30)} "
                    f"where {brief(want, 30)} was put"
                )
    parts = []
    if missing:
        parts.append(f"missing {_listing(missing)}")
    if extra:
        sentinels = [e for e in extra if same(e, sentinel)]
        what = _listing(extra)
        parts.append(f"unexpected {what}" + (" (the sentinel is not an item)" if sentinels else ""))
    if len(observed) == count and not parts:  # same multiset, types differ in a way _unmatched missed
        parts.append("not the items that were put")
    return f"{head}: " + "; ".join(parts)


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
