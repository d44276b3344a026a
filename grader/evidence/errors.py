"""An exception raised by the student's code, as the sandbox reported it: plain data. Runs in the pytest process.

Re-exported by :mod:`grader.evidence.run` and :mod:`grader.evidence`, where checks find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["StudentError"]


@dataclass(frozen=True)
class StudentError:
    """An exception raised by the student's code, described as plain data."""

    type: str
    message: str
    frames: tuple[dict[str, Any], ...]
    syntax: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudentError:
        frames = tuple(f for f in data.get("frames", []) if isinstance(f, dict))
        syntax = data.get("syntax") if isinstance(data.get("syntax"), dict) else None
        return cls(str(data.get("type", "Exception")), str(data.get("message", "")), frames, syntax)

    @property
    def student_frame(self) -> dict[str, Any] | None:
        """The innermost frame in the student's own files, if any."""
        for frame in reversed(self.frames):
            if frame.get("student"):
                return frame
        return None

    def where(self) -> str:
        """``file, line N, in func: source`` of the student's innermost frame, or ''."""
        if self.syntax:
            s = self.syntax
            text = f"{s.get('file')}, line {s.get('line')}"
            if s.get("text"):
                text += f": {str(s['text']).strip()}"
            return text
        frame = self.student_frame
        if frame is None:
            return ""
        name = str(frame.get("file", "?")).replace("\\", "/").rsplit("/", 1)[-1]
        text = f"{name}, line {frame.get('line')}, in {frame.get('func')}"
        if frame.get("source"):
            text += f": {frame['source']}"
        return text

    def summary(self) -> str:
        """One line: ``ValueError: message (file, line N, in f: source)``."""
        text = f"{self.type}: {self.message}" if self.message else self.type
        if self.syntax and self.syntax.get("msg"):
            text = f"{self.type}: {self.syntax['msg']}"
        where = self.where()
        return f"{text} ({where})" if where else text
