"""Pieces the LMS exporters share: what a student may read about one check.

A check whose visibility is anything but ``visible`` reveals nothing in any output a
student reads: no name, message, points, and no count or total that includes it.
Gradescope has per-test visibility (see :mod:`.gradescope`); PrairieLearn, GitHub
Classroom and JUnit consumers (CodeGrade, CI logs) show every test to whoever sees
the result, so those exporters leave such checks out of their lists and summaries
(:func:`shown_checks`, :func:`shown_summary`).
"""

from __future__ import annotations

from grader.model.results import CheckResult, Status, SubmissionResult

__all__ = ["HIDDEN_DETAILS", "check_message", "check_output", "is_shown", "shown_checks", "shown_summary"]

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


def shown_checks(result: SubmissionResult) -> list[CheckResult]:
    """The checks a student may see now, in their order."""
    return [c for c in result.checks if is_shown(c)]


def shown_summary(result: SubmissionResult) -> str:
    """``"5 of 7 checks passed: 8/10 points."`` over the checks a student may see, and only those.

    After a line saying so when the grading was unsafe (``--unsafe-no-sandbox``)."""
    checks = shown_checks(result)
    passed = sum(1 for c in checks if c.passed)
    score = sum(c.points for c in checks)
    most = sum(c.max_points for c in checks)
    unsafe = f"Note: {result.unsafe}.\n" if result.unsafe else ""
    return f"{unsafe}{passed} of {len(checks)} checks passed: {score:g}/{most:g} points."
