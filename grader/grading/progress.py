"""Follow a grading's progress: the JSON lines the plugin appends to ``--grader-progress PATH``.

The pytest process appends one line when the checks are collected, one when a
check starts and one when it is graded (see ``grader.plugin.ProgressWriter``).
The controller reads what is new while it waits for pytest, keeps only complete
lines, and hands each event to a callback. Progress is only for showing: the
result the controller trusts is the result file written at the end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ProgressEvent", "ProgressTail"]

ProgressEvent = dict[str, Any]
MAX_LINE = 64 * 1024
"""A longer line is not the plugin's: it is skipped."""


class ProgressTail:
    """Reads the events appended to ``path`` since the last read and passes each to ``on_event``."""

    def __init__(self, path: Path, on_event: Callable[[ProgressEvent], None]) -> None:
        self.path = path
        self.on_event = on_event
        self.offset = 0
        self.partial = b""

    def poll(self) -> None:
        """Hand every complete line written since the last call to ``on_event`` (malformed lines are skipped)."""
        try:
            with open(self.path, "rb") as source:
                source.seek(self.offset)
                chunk = source.read(1024 * 1024)
        except OSError:
            return
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_LINE:
            self.partial = b""
        for line in lines:
            event = _parse(line)
            if event is not None:
                self.on_event(event)


def _parse(line: bytes) -> ProgressEvent | None:
    if not line.strip() or len(line) > MAX_LINE:
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event
