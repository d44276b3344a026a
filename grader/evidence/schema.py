"""What a check may ask for: probe names and event kinds, checked against :mod:`grader.inside.events`.

Runs in the pytest process. A probe or event kind that does not exist is a
mistake of the assignment, not of the student: it raises
:class:`grader.model.assignment.AssignmentError` (naming the unknown name, the
known ones and the line of the check that asked), before any sandbox starts,
and the plugin reports the assignment as broken.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from grader.inside import events
from grader.model.assignment import AssignmentError

__all__ = ["assignment_error", "check_site", "require_event_kind", "require_probes"]

_GRADER_DIR = Path(__file__).resolve().parent.parent


def check_site() -> tuple[str, int] | None:
    """``(file name, line)`` of the innermost frame of a check file calling this, or ``None``."""
    frame = sys._getframe(1)
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        if path.name.startswith("test_") and _GRADER_DIR not in path.resolve().parents:
            return path.name, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return None


def assignment_error(what: str) -> AssignmentError:
    """An :class:`AssignmentError` saying ``what``, placed at the line of the check that asked."""
    site = check_site()
    if site is None:
        return AssignmentError(what)
    return AssignmentError(f"{site[0]} line {site[1]}: {what}", file=site[0], line=site[1], what=what)


def require_probes(names: Iterable[str]) -> None:
    """Raise :class:`AssignmentError` unless every name is a probe of :data:`grader.inside.events.PROBES`."""
    if isinstance(names, str):
        raise assignment_error(f"probes= takes a list of probe names, not the string {names!r}")
    for name in names:
        if name not in events.PROBES:
            raise assignment_error(
                f"the check asks for the probe {name!r}, which does not exist; "
                f"known probes: {', '.join(sorted(events.PROBES))}"
            )


def require_event_kind(kind: str) -> None:
    """Raise :class:`AssignmentError` unless ``kind`` is an event kind of :data:`grader.inside.events.KINDS`."""
    if kind not in events.KINDS:
        raise assignment_error(
            f"the check asks for events of kind {kind!r}, which no probe records; "
            f"known kinds: {', '.join(sorted(events.KINDS))}"
        )
