"""Terminal exporter: a readable summary of one graded submission.

The report is a list of lines, each a list of ``(text, style)`` segments: the
plain text is what a pipe gets, the styles (rich style names) are what a
terminal paints (:mod:`grader.exporters.live`). In order:

- the header (assignment, student, submission) and, graded with ``--unsafe-no-sandbox``, a line saying so;
- one line per check: status, points, time, name (fixed-width columns first,
  so lines printed one by one as checks finish line up);
- the problems: each distinct message once, with the check(s) it cost;
- the score line;
- the sandbox: one line, or (verbose) the list of protections.

``quiet`` keeps the score line only.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import Any

from grader.exporters._common import cause_of
from grader.model.results import CheckResult, Status, SubmissionResult

__all__ = [
    "NORMAL",
    "QUIET",
    "VERBOSE",
    "Line",
    "check_line",
    "header_line",
    "integrity_lines",
    "no_submission_lines",
    "plain",
    "render_lines",
    "render_text",
    "tail_lines",
    "unsafe_lines",
]

Line = list[tuple[str, str]]
"""One line of the report: ``(text, style)`` segments; style ``""`` is unstyled."""

QUIET, NORMAL, VERBOSE = 0, 1, 2
SYMBOLS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.TIMED_OUT: "TIME", Status.ERROR: "ERR "}
STYLES = {Status.PASSED: "green", Status.FAILED: "red", Status.TIMED_OUT: "yellow", Status.ERROR: "magenta"}
DETAIL = "       "
PROTECTIONS_WIDTH = 110
NO_CODE_RAN = "no student code ran"
UNSAFE_PREFIX = "UNSAFE"
WARNINGS = (UNSAFE_PREFIX, "NOT ISOLATED")
"""Protections entries that say what is *not* protected: always shown in full, never counted."""


def header_line(assignment: str, student: str, submission: str) -> Line:
    who = f" for {student}" if student else ""
    return [(f"{assignment}{who}: {submission}", "")]


def check_line(
    name: str, status: Status, points: float, max_points: float, duration: float, width: int | None = None
) -> Line:
    """``  PASS   1/1   0.5s  name``; with ``width``, the name is cut to fit it."""
    columns = f" {f'{points:g}/{max_points:g}':>5}  {duration:5.1f}s  "
    if width is not None:
        room = max(10, width - 2 - len(SYMBOLS[status]) - len(columns))
        if len(name) > room:
            name = name[: room - 1] + "…"
    return [("  ", ""), (SYMBOLS[status], STYLES[status]), (columns + name, "")]


def _check_line(check: CheckResult, width: int | None) -> Line:
    return check_line(check.name, check.status, check.points, check.max_points, check.duration, width)


def _wrapped(text: str, width: int | None, prefix: str = DETAIL) -> list[Line]:
    """``text`` indented by ``prefix``; with ``width``, each line wrapped with the same indentation."""
    lines: list[Line] = []
    for raw in text.rstrip("\n").splitlines() or [""]:
        line = prefix + raw if raw.strip() else raw
        if width is None or len(line) <= width:
            lines.append([(line, "")])
            continue
        indent = prefix + raw[: len(raw) - len(raw.lstrip())]
        for part in textwrap.wrap(
            raw.strip(), width=width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
        ):
            lines.append([(part, "")])
    return lines


def _problem_groups(checks: Sequence[CheckResult], show_output: bool) -> list[list[CheckResult]]:
    """The checks that lost points, grouped by the root cause their diagnosis names (:func:`cause_of`), else by
    what they say (status, message, stacks, output): first seen first."""
    groups: dict[tuple[Any, ...], list[CheckResult]] = {}
    for check in checks:
        if check.status is Status.PASSED:
            continue
        cause = cause_of(check)
        key = ("cause", cause) if cause else (check.status, check.message, check.diagnostics,
                                              check.output if show_output else "")
        groups.setdefault(key, []).append(check)
    return list(groups.values())


def _problem(group: list[CheckResult], total: int, show_output: bool, width: int | None) -> list[Line]:
    first = group[0]
    symbol = [("  ", ""), (SYMBOLS[first.status], STYLES[first.status])]
    lines: list[Line] = [[]]
    if len(group) == 1:
        lines.append([*symbol, (f" {first.name}", "")])
    else:
        lost = sum(c.max_points - c.points for c in group)
        every = "all " if len(group) == total else ""
        lines.append([*symbol, (f" the same problem in {every}{len(group)} checks ({lost:g} points):", "")])
        if len(group) < total:
            for check in group:
                lines.extend(_wrapped(check.name, width, DETAIL + "- "))
    if first.message:
        lines.extend(_wrapped(first.message, width))
    if first.diagnostics:
        lines.extend(_wrapped(first.diagnostics, width))
    if show_output and first.output:
        lines.extend(_wrapped("Output:\n" + first.output, width))
    return lines


def _score_line(result: SubmissionResult) -> Line:
    failed = sum(1 for c in result.checks if not c.passed)
    verdict = "all checks passed" if failed == 0 else f"{failed} of {len(result.checks)} checks lost points"
    return [(f"Score: {result.score:g}/{result.max_score:g} ({verdict}; {result.duration:.1f}s)", "bold")]


def _sandbox_lines(result: SubmissionResult, verbosity: int, width: int | None) -> list[Line]:
    protections = result.protections
    if not protections:
        return []
    if len(protections) == 1 and protections[0].startswith(NO_CODE_RAN):
        return [[(f"Sandbox: {protections[0]}.", "dim")]]
    if verbosity < VERBOSE:  # what was allowed unsafely is said in full, the protections are counted
        unsafe = [p for p in protections if p.startswith(WARNINGS)]
        count = len(protections) - len(unsafe)
        lines: list[Line] = [[(f"Sandbox: {p}.", "bold red")] for p in unsafe]
        return [*lines, [(f"Sandbox: {count} protections active (-v lists them)", "dim")]]
    text = "Sandbox protections: " + "; ".join(protections) + "."
    wrap = min(width, PROTECTIONS_WIDTH) if width else PROTECTIONS_WIDTH
    return [[(line, "dim")] for line in textwrap.wrap(text, width=wrap, subsequent_indent="  ", break_on_hyphens=False)]


def integrity_lines(result: SubmissionResult, width: int | None = None) -> list[Line]:
    """The integrity flags, for the instructor to review: every report shows them, even ``-q``."""
    if not result.integrity:
        return []
    lines: list[Line] = [[("Integrity flags (for the instructor to review; flagged checks give no points):", "bold red")]]
    wrap = min(width, PROTECTIONS_WIDTH) if width else PROTECTIONS_WIDTH
    for flag in result.integrity:
        parts = textwrap.wrap(f"- {flag}", width=wrap, initial_indent="  ", subsequent_indent="    ")
        lines.extend([(part, "")] for part in parts)
    return lines


def unsafe_lines(result: SubmissionResult) -> list[Line]:
    """The ``--unsafe-no-sandbox`` marker: every report shows it, even ``-q``."""
    return [[(f"UNSAFE: {result.unsafe}.", "bold red")]] if result.unsafe else []


def tail_lines(
    result: SubmissionResult,
    *,
    verbosity: int = NORMAL,
    show_output: bool = False,
    width: int | None = None,
    unsafe: bool = True,
) -> list[Line]:
    """What follows the check lines: notes on the file graded, the problems (each said once), the score line, the sandbox.

    A submission without a gradable file gets why, what was seen, and that no check ran.

    With ``unsafe`` (the default), the ``--unsafe-no-sandbox`` marker first, when the result has one.
    """
    lines: list[Line] = unsafe_lines(result) if unsafe else []
    if result.no_submission is not None:
        return [*lines, *no_submission_lines(result, width)]
    if verbosity > QUIET:
        lines.extend([(f"Note: {note}.", "")] for note in result.notes)
    if result.error:
        lines.append([(f"Could not grade: {result.error}", "bold red")])
        if result.error_detail and verbosity > QUIET:
            lines.extend(_wrapped(result.error_detail[-3000:], width))
        return lines
    if verbosity <= QUIET:
        return [*lines, _score_line(result), *integrity_lines(result, width)]
    for group in _problem_groups(result.checks, show_output):
        lines.extend(_problem(group, len(result.checks), show_output, width))
    if lines:
        lines.append([])
    lines.append(_score_line(result))
    lines.extend(integrity_lines(result, width))
    lines.extend(_sandbox_lines(result, verbosity, width))
    return lines


def no_submission_lines(result: SubmissionResult, width: int | None = None) -> list[Line]:
    """What a student without a gradable file is told: why, what was seen, and that no check ran."""
    wrap = min(width, PROTECTIONS_WIDTH) if width else PROTECTIONS_WIDTH
    lines: list[Line] = [[(f"No submission found: {result.no_submission}.", "bold red")]]
    if result.seen:
        seen = textwrap.wrap("Files seen: " + ", ".join(result.seen), width=wrap, subsequent_indent="  ")
        lines.extend([(part, "")] for part in seen)
    lines.append([("No check ran, so there is no score; submit the file and grade again.", "")])
    return lines


def render_lines(
    result: SubmissionResult, *, verbosity: int = NORMAL, show_output: bool = False, width: int | None = None
) -> list[Line]:
    """The whole report of ``result`` as lines (see the module's docstring)."""
    if verbosity <= QUIET:
        return tail_lines(result, verbosity=verbosity, width=width)
    lines = [header_line(result.assignment, result.student, result.submission), *unsafe_lines(result)]
    if not result.error:
        lines.extend(_check_line(check, width) for check in result.checks)
    return lines + tail_lines(result, verbosity=verbosity, show_output=show_output, width=width, unsafe=False)


def plain(line: Line) -> str:
    return "".join(text for text, _ in line)


def render_text(
    result: SubmissionResult,
    *,
    colour: bool = False,
    show_output: bool = False,
    verbosity: int = NORMAL,
    width: int | None = None,
) -> str:
    """The summary ``grader check`` prints once grading is over (with ``colour``, painted by rich)."""
    lines = render_lines(result, verbosity=verbosity, show_output=show_output, width=width)
    if not colour:
        return "".join(plain(line) + "\n" for line in lines)
    from rich.console import Console
    from rich.text import Text

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=10_000, highlight=False)
    for line in lines:
        console.print(Text.assemble(*line), soft_wrap=True)
    return buffer.getvalue()
