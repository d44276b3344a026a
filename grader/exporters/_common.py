"""Pieces the LMS exporters share: what a student may read about one check.

Gradescope has per-test visibility; PrairieLearn, GitHub Classroom and JUnit
consumers (CodeGrade, CI logs) show every test to whoever sees the result. For
those, a check whose visibility is anything but ``visible`` keeps its name and
points but not its message, diagnostics or captured output.
"""

from __future__ import annotations

from grader.model.results import CheckResult, Status

__all__ = ["HIDDEN_DETAILS", "check_message", "check_output", "is_shown"]

HIDDEN_DETAILS = "The details of this check are hidden."

LABELS = {Status.PASSED: "Passed", Status.FAILED: "Failed", Status.TIMED_OUT: "Timed out", Status.ERROR: "Error"}


def is_shown(check: CheckResult) -> bool:
    """Whether a platform without per-test visibility may show this check's details."""
    return check.visibility == "visible"


def check_message(check: CheckResult) -> str:
    """One paragraph for the student: the verdict, then what was observed/expected and the hint."""
    if not is_shown(check):
        return f"{LABELS[check.status]}. {HIDDEN_DETAILS}"
    if check.passed:
        return "Passed."
    parts = [f"{LABELS[check.status]}. {check.message}".strip()]
    if check.diagnostics and check.status is not Status.ERROR:
        parts.append(check.diagnostics)
    return "\n\n".join(parts)


def check_output(check: CheckResult) -> str:
    """What the student's program printed during the check (``""`` when hidden)."""
    return check.output if is_shown(check) else ""
