"""Gradescope exporter: ``results.json`` per Gradescope's autograder specification.

Followed: https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output
format"). Top level: ``score``, ``execution_time`` (seconds, a number),
``output``, ``output_format``, ``visibility``, ``extra_data`` and ``tests``;
each test has ``name``, ``number``, ``score``, ``max_score``, ``status``
(``passed``/``failed``), ``output``, ``output_format``, ``visibility``
(``hidden``, ``after_due_date``, ``after_published`` or ``visible``, from the
assignment's config; a hidden check worth points becomes ``after_published``, so
Gradescope hides the total too) and ``extra_data`` (the check's id and exact status:
``timed_out`` and ``error`` are ``failed`` to Gradescope). If the checks
could not run at all, the student sees a visible "Autograder failed" test
worth nothing and the instructor a hidden one with the details, and the file
is still valid. A submission without a gradable file (``no_submission``) gets 0
points, a visible "No submission found" test saying what was seen and expected,
and no other test; a graded file that was not named as the assignment asks is
named at the top of the output ("Note: graded lab2/HelloThreads.py as hello_threads.py.").

The student's name and id come from Gradescope's ``submission_metadata.json``
(https://gradescope-autograders.readthedocs.io/en/latest/submission_metadata/),
read by :func:`read_submission_metadata` and kept in the result's
``metadata["gradescope"]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.exporters._common import check_diagnostics, is_shown, shown_checks, shown_summary
from grader.exporters.files import write_atomic
from grader.model.results import CheckResult, Status, SubmissionResult

__all__ = [
    "gradescope_failure",
    "gradescope_no_submission",
    "read_submission_metadata",
    "student_line",
    "to_gradescope",
    "write_gradescope",
    "write_gradescope_document",
]

FAILED_NAME = "Autograder failed"
STAFF_NAME = "Autograder failed (details for staff)"


def _test_output(check: CheckResult, checks: Sequence[CheckResult] = ()) -> str:
    parts = []
    if check.status is not Status.PASSED:
        label = {Status.FAILED: "Failed", Status.TIMED_OUT: "Timed out", Status.ERROR: "Error"}[check.status]
        parts.append(f"{label}. {check.message}".strip())
        if check.diagnostics and check.status is not Status.ERROR:
            parts.append(check_diagnostics(check, checks))
    else:
        parts.append("Passed.")
    if check.output:
        parts.append("Output of your program:\n" + check.output)
    return "\n\n".join(parts)


def _visibility(check: CheckResult) -> str:
    """The test's Gradescope visibility.

    Gradescope hides a student's total score while any test is ``after_due_date`` or
    ``after_published``, but not for ``hidden`` tests, which its specification reserves for
    tests worth no points. A hidden check that carries points is therefore exported as
    ``after_published``: the test and the total stay hidden until the instructor publishes
    the grades.
    """
    if check.visibility == "hidden" and check.max_points > 0:
        return "after_published"
    return check.visibility


def read_submission_metadata(path: Path) -> dict[str, Any]:
    """The parts of Gradescope's ``submission_metadata.json`` a report shows (``{}`` if unreadable).

    Returns ``{"users": [{"name", "id", "email"}...], "submission_id": ..., "assignment": title}``
    with only the keys found; a group submission has several users.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    users = []
    for user in data.get("users") or []:
        if isinstance(user, dict):
            users.append({k: user[k] for k in ("name", "id", "email") if k in user and user[k] is not None})
    info: dict[str, Any] = {"users": users}
    if data.get("id") is not None:
        info["submission_id"] = data["id"]
    assignment = data.get("assignment")
    if isinstance(assignment, dict) and assignment.get("title"):
        info["assignment"] = str(assignment["title"])
    return info


def student_line(metadata: dict[str, Any]) -> str:
    """``"Ada Lovelace (id 1234)"`` for the users of a Gradescope submission, or ``""``."""
    people = []
    for user in metadata.get("users", []):
        name = str(user.get("name") or user.get("email") or "").strip()
        ident = user.get("id")
        if name and ident is not None:
            people.append(f"{name} (id {ident})")
        elif name or ident is not None:
            people.append(name or f"id {ident}")
    return ", ".join(people)


def _who(result: SubmissionResult) -> str:
    line = student_line(result.metadata.get("gradescope", {}))
    return line or result.student


def gradescope_failure(
    error: str, detail: str = "", *, execution_time: float = 0.0, student: str = ""
) -> dict[str, Any]:
    """The results.json of a submission that could not be graded (a grader problem, not the student's).

    The student sees a visible test saying so; the instructor also gets a hidden
    test holding ``detail`` (a traceback or log).
    """
    header = f"Submission of {student}.\n" if student else ""
    return {
        "score": 0.0,
        "execution_time": round(float(execution_time), 3),
        "output": header + "The autograder could not grade this submission. Your instructor has the details.",
        "output_format": "text",
        "visibility": "visible",
        "tests": [
            {
                "name": FAILED_NAME,
                "number": "1",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": f"The autograder could not grade this submission: {error}. "
                "This is not a verdict on your code; tell your instructor.",
                "output_format": "text",
                "visibility": "visible",
            },
            {
                "name": STAFF_NAME,
                "number": "2",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": (detail or error)[-20000:],
                "output_format": "text",
                "visibility": "hidden",
            },
        ],
    }


def integrity_text(result: SubmissionResult) -> str:
    """The integrity flags as a paragraph for an LMS's summary (empty when there are none)."""
    if not result.integrity:
        return ""
    return "Integrity flags (for the instructor to review; flagged checks give no points):\n" + "\n".join(
        f"- {flag}" for flag in result.integrity
    )


NO_SUBMISSION_NAME = "No submission found"


def gradescope_no_submission(result: SubmissionResult, student: str = "") -> dict[str, Any]:
    """The results.json of a submission without a gradable file: 0 points, and a visible test saying why."""
    seen = ", ".join(result.seen) if result.seen else "nothing"
    text = (
        f"No submission found: {result.no_submission}.\n\nFiles seen in your submission: {seen}.\n\n"
        "No check ran. Submit the file again (named as the assignment asks) to be graded."
    )
    header = f"Submission of {student}.\n" if student else ""
    return {
        "score": 0.0,
        "execution_time": round(float(result.duration), 3),
        "output": header + text,
        "output_format": "text",
        "visibility": "visible",
        "tests": [
            {
                "name": NO_SUBMISSION_NAME,
                "number": "1",
                "score": 0.0,
                "max_score": 0.0,
                "status": "failed",
                "output": text,
                "output_format": "text",
                "visibility": "visible",
                "extra_data": {"status": "no_submission"},
            }
        ],
    }


def _graded_file_note(result: SubmissionResult) -> str:
    return "".join(f"Note: {note}.\n" for note in result.notes)


def to_gradescope(result: SubmissionResult) -> dict[str, Any]:
    """The results.json document for ``result``."""
    who = _who(result)
    if result.no_submission is not None:
        doc = gradescope_no_submission(result, who)
    elif result.error:
        doc = gradescope_failure(
            result.error, result.error_detail, execution_time=result.duration, student=who
        )
        if result.unsafe:
            doc["output"] = f"Note: {result.unsafe}.\n{doc.get('output', '')}"
    else:
        # Visible checks first, numbered 1..k, so the numbers show no gap where a hidden check sits.
        ordered = shown_checks(result) + [c for c in result.checks if not is_shown(c)]
        tests = []
        for number, check in enumerate(ordered, start=1):
            tests.append(
                {
                    "name": check.name,
                    "number": str(number),
                    "score": check.points,
                    "max_score": check.max_points,
                    "status": "passed" if check.passed else "failed",
                    "output": _test_output(check, result.checks),
                    "output_format": "text",
                    "visibility": _visibility(check),
                    "extra_data": {"check": check.id, "status": check.status.value},
                }
            )
        summary = shown_summary(result)
        doc = {
            "score": result.score,
            "execution_time": round(result.duration, 3),
            "output": (f"Submission of {who}.\n" if who else "") + _graded_file_note(result) + summary,
            "output_format": "text",
            "visibility": "visible",
            "tests": tests,
        }
    extra: dict[str, Any] = {"assignment": result.assignment}
    gradescope = result.metadata.get("gradescope", {})
    if gradescope.get("users"):
        extra["users"] = gradescope["users"]
    if "submission_id" in gradescope:
        extra["submission_id"] = gradescope["submission_id"]
    if result.protections:
        extra["protections"] = list(result.protections)
    if result.integrity:
        extra["integrity"] = list(result.integrity)
        if not result.error:
            doc["output"] += "\n" + integrity_text(result)
    if result.unsafe:
        extra["unsafe_no_sandbox"] = result.unsafe
    doc["extra_data"] = extra
    return doc


def write_gradescope_document(doc: dict[str, Any], path: Path) -> None:
    """Write a results.json document atomically: a reader never sees half a file.

    The temporary file is created exclusively in the target's folder and renamed
    over the target, so a file or link planted at ``path`` is replaced, never
    followed.
    """
    write_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False))


def write_gradescope(result: SubmissionResult, path: Path) -> None:
    """Write ``result`` as Gradescope's results.json at ``path``."""
    write_gradescope_document(to_gradescope(result), path)
