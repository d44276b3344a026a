"""What ``grader check`` shows while it grades: each check's line as it finishes, and on a terminal a live indicator.

:class:`LiveReport` is fed the progress events of :mod:`grader.grading.progress`
(checks collected, started, finished) and, at the end, the result. On a
terminal (stdout a tty, ``TERM`` not ``dumb``) a transient indicator below the
lines says which checks are running and for how long; in a pipe there is none,
and each check's line is printed once, as it finishes, without colour. Colour
follows rich: on a terminal unless ``NO_COLOR`` is set (or ``--no-colour``),
also in a pipe when ``FORCE_COLOR`` is set. Lines are fitted to the terminal's
width (``COLUMNS`` overrides it); in a pipe they are never wrapped.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from grader.exporters.terminal import NORMAL, QUIET, Line, check_line, header_line, tail_lines
from grader.model.results import Status, SubmissionResult

__all__ = ["LiveReport"]

FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
ASCII_FRAMES = "|/-\\"


def _is_tty(stream: TextIO) -> bool:
    try:
        return os.isatty(stream.fileno()) and os.environ.get("TERM", "") not in ("dumb", "unknown")
    except (AttributeError, OSError, ValueError):
        return False


class _Indicator:
    """The live part: one line per running check, then how many are done and the time so far."""

    def __init__(self, report: LiveReport) -> None:
        self.report = report
        self.started = time.monotonic()
        self.frames = FRAMES if (report.console.encoding or "").lower().startswith("utf") else ASCII_FRAMES

    def __rich__(self) -> Text:
        now = time.monotonic()
        frame = self.frames[int(now * 10) % len(self.frames)]
        width = max(20, self.report.console.width - 1)
        with self.report.lock:
            running = list(self.report.running.values())
            done, total = self.report.done, self.report.total
        lines = []
        for name, since, limit in running:
            clock = f"{now - since:5.1f}s" + (f" of {limit:g}s" if limit else "")
            lines.append(_fit(f"  {frame} {clock}  {name}", width))
        if total is None:
            lines.append(_fit(f"  {frame} starting pytest and collecting the checks… {now - self.started:.1f}s", width))
        else:
            lines.append(_fit(f"  {done} of {total} checks done, {now - self.started:.1f}s", width))
        return Text("\n".join(lines), style="" if self.report.plain_style else "cyan")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class LiveReport:
    """Prints a grading as it happens; a context manager (the indicator stops on leaving it)."""

    def __init__(
        self,
        *,
        verbosity: int = NORMAL,
        show_output: bool = False,
        no_colour: bool = False,
        stream: TextIO | None = None,
    ) -> None:
        stream = stream if stream is not None else sys.stdout
        self.verbosity = verbosity
        self.show_output = show_output
        self.tty = _is_tty(stream)
        self.console = Console(file=stream, highlight=False, markup=False, emoji=False, no_color=no_colour or None)
        self.plain_style = no_colour or self.console.no_color or self.console.color_system is None
        self.width = self.console.width if self.tty else None
        self.lock = threading.Lock()
        self.running: dict[str, tuple[str, float, float]] = {}
        self.done = 0
        self.total: int | None = None
        self.printed: Counter[str] = Counter()
        self.live: Live | None = None

    def __enter__(self) -> LiveReport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, assignment: str, student: str, submission: str) -> None:
        """Print the header."""
        if self.verbosity > QUIET:
            self._print(header_line(assignment, student, submission))

    def checks_started(self, pid: int | None = None) -> None:
        """The checks have started (in process ``pid``): on a terminal, start the indicator.

        Not before: the indicator is a thread, and the grading's pytest process is a fork of this
        process only while it has no other (:func:`grader.grading.warm.fork_pytest`).
        """
        if self.tty and self.verbosity > QUIET and self.live is None:
            self.live = Live(_Indicator(self), console=self.console, refresh_per_second=4, transient=True)
            self.live.start()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def event(self, event: dict[str, Any]) -> None:
        """One progress event of the plugin (see :class:`grader.grading.progress.ProgressTail`)."""
        kind, ident = event.get("event"), str(event.get("id", ""))
        with self.lock:
            if kind == "collected" and isinstance(event.get("count"), int):
                self.total = event["count"]
            elif kind == "started":
                self.running[ident] = (str(event.get("name", ident)), time.monotonic(), _number(event.get("timeout")))
            elif kind == "finished":
                self.running.pop(ident, None)
                self.done += 1
        if kind == "finished":
            self._finished(event)

    def _finished(self, event: dict[str, Any]) -> None:
        try:
            status = Status(event.get("status"))
        except ValueError:
            return
        name = str(event.get("name", ""))
        self.printed[name] += 1
        if self.verbosity > QUIET:
            points, max_points = _number(event.get("points")), _number(event.get("max_points"))
            self._print(check_line(name, status, points, max_points, _number(event.get("duration")), self.width))

    def finish(self, result: SubmissionResult) -> None:
        """Stop the indicator; print the lines of checks not shown yet, then the problems, score and sandbox."""
        self.stop()
        if self.verbosity > QUIET and not result.error:
            for check in result.checks:
                if self.printed[check.name] > 0:
                    self.printed[check.name] -= 1
                    continue
                self._print(check_line(check.name, check.status, check.points, check.max_points, check.duration, self.width))
        for line in tail_lines(result, verbosity=self.verbosity, show_output=self.show_output, width=self.width):
            self._print(line)

    def _print(self, line: Line) -> None:
        text = Text("".join(part for part, _ in line)) if self.plain_style else Text.assemble(*line)
        self.console.print(text, soft_wrap=True)
        if not self.tty:
            self.console.file.flush()


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
