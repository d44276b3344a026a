"""Pieces the LMS exporters share: what a student may read about one check.

A check whose visibility is anything but ``visible`` reveals nothing in any output a
student reads: no name, message, points, and no count or total that includes it.
Gradescope has per-test visibility (see :mod:`.gradescope`); PrairieLearn, GitHub
Classroom and JUnit consumers (CodeGrade, CI logs) show every test to whoever sees
the result, so those exporters leave such checks out of their lists and summaries
(:func:`shown_checks`, :func:`shown_summary`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from grader.model.results import CheckResult, Status, SubmissionResult

__all__ = [
    "HIDDEN_DETAILS",
    "cause_of",
    "check_diagnostics",
    "check_message",
    "check_output",
    "is_shown",
    "same_cause",
    "shown_checks",
    "shown_summary",
]

_CAUSE = re.compile(r"^Likely cause \((?P<title>[^)]*)\):", re.MULTILINE)
_PLACE = re.compile(r"[\w./-]+\.py, line \d+")

HIDDEN_DETAILS = "The details of this check are hidden."

LABELS = {Status.PASSED: "Passed", Status.FAILED: "Failed", Status.TIMED_OUT: "Timed out", Status.ERROR: "Error"}


def is_shown(check: CheckResult) -> bool:
    """Whether a platform without per-test visibility may show this check's details."""
    return check.visibility == "visible"


def cause_of(check: CheckResult) -> str:
    """The root cause a check's diagnosis names: its likely causes and the lines of the student's code they name.

    The same for every check the one mistake cost, whatever each check called it with (the process
    ids and the arguments differ, the cause and its lines do not); ``""`` when no cause is named.
    """
    if check.passed or check.status is Status.ERROR or not check.diagnostics:
        return ""
    head = check.diagnostics.split("\n== ", 1)[0]
    titles = [m.group("title") for m in _CAUSE.finditer(head)]
    if not titles:
        return ""
    return "; ".join(titles) + " at " + ", ".join(sorted(set(_PLACE.findall(head))))


def same_cause(check: CheckResult, checks: Sequence[CheckResult]) -> list[CheckResult]:
    """The shown checks of ``checks`` that lost points to the same cause as ``check`` (itself included), in order."""
    cause = cause_of(check)
    if not cause or not is_shown(check):
        return [check]
    return [c for c in checks if c is check or (is_shown(c) and cause_of(c) == cause)]


def check_diagnostics(check: CheckResult, checks: Sequence[CheckResult] = ()) -> str:
    """The diagnosis to show with ``check``: said in full with the first check a cause cost, referred to after.

    ``checks``: every check of the submission (none: the diagnosis as it is).
    """
    group = same_cause(check, checks)
    if len(group) < 2:
        return check.diagnostics
    names = ", ".join(f'"{c.name}"' for c in group if c is not check)
    if group[0] is check:
        return f"{check.diagnostics}\n\nThis one cause also cost the check(s) {names}."
    titles = ", ".join(m.group("title") for m in _CAUSE.finditer(check.diagnostics.split("\n== ", 1)[0]))
    return (f"Likely cause ({titles}): the same problem as in the check \"{group[0].name}\", which explains it and "
            f"shows where each process was.")


def check_message(check: CheckResult, checks: Sequence[CheckResult] = ()) -> str:
    """One paragraph for the student: the verdict, then what was observed/expected and the hint.

    With ``checks`` (every check of the submission), a diagnosis several checks share is said once
    (:func:`check_diagnostics`).
    """
    if not is_shown(check):
        return f"{LABELS[check.status]}. {HIDDEN_DETAILS}"
    if check.passed:
        return "Passed."
    parts = [f"{LABELS[check.status]}. {check.message}".strip()]
    if check.diagnostics and check.status is not Status.ERROR:
        parts.append(check_diagnostics(check, checks))
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
