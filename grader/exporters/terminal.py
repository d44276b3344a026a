"""Terminal exporter: a readable summary of one graded submission."""

from __future__ import annotations

import textwrap

from grader.model.results import Status, SubmissionResult

__all__ = ["render_text"]

SYMBOLS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.TIMED_OUT: "TIME", Status.ERROR: "ERR "}
COLOURS = {Status.PASSED: "32", Status.FAILED: "31", Status.TIMED_OUT: "33", Status.ERROR: "35"}


def _indent(text: str, prefix: str = "       ") -> str:
    return textwrap.indent(text.rstrip("\n"), prefix)


def render_text(result: SubmissionResult, *, colour: bool = False, show_output: bool = False) -> str:
    """The summary ``grader check`` prints: one line per check, details for the ones that lost points."""

    def paint(text: str, status: Status) -> str:
        return f"\x1b[{COLOURS[status]}m{text}\x1b[0m" if colour else text

    who = f" for {result.student}" if result.student else ""
    lines = [f"{result.assignment}{who}: {result.submission}"]
    if result.unsafe:
        lines.append(f"UNSAFE: {result.unsafe}.")
    if result.error:
        lines.append(f"Could not grade: {result.error}")
        if result.error_detail:
            lines.append(_indent(result.error_detail[-3000:]))
        return "\n".join(lines) + "\n"
    width = max((len(c.name) for c in result.checks), default=10)
    for check in result.checks:
        points = f"{check.points:g}/{check.max_points:g}"
        lines.append(f"  {paint(SYMBOLS[check.status], check.status)} {check.name:<{width}}  {points:>7}  {check.duration:5.1f}s")
        if check.status is not Status.PASSED:
            if check.message:
                lines.append(_indent(check.message))
            if check.diagnostics:
                lines.append(_indent(check.diagnostics))
            if show_output and check.output:
                lines.append(_indent("Output:\n" + check.output))
    failed = sum(1 for c in result.checks if not c.passed)
    verdict = "all checks passed" if failed == 0 else f"{failed} of {len(result.checks)} checks lost points"
    lines.append(f"Score: {result.score:g}/{result.max_score:g} ({verdict}; {result.duration:.1f}s)")
    if result.integrity:
        lines.append(paint("Integrity flags (for the instructor to review; flagged checks give no points):", Status.FAILED))
        for flag in result.integrity:
            lines.extend(textwrap.wrap(f"- {flag}", width=110, initial_indent="  ", subsequent_indent="    "))
    if result.protections:
        text = "Sandbox protections: " + "; ".join(result.protections) + "."
        lines.extend(textwrap.wrap(text, width=110, subsequent_indent="  ", break_on_hyphens=False))
    return "\n".join(lines) + "\n"
