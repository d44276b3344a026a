"""PrairieLearn exporter: the external grader's ``results.json``.

Followed: PrairieLearn's external grading docs, "Grading results"
(https://prairielearn.readthedocs.io/en/latest/externalGrading/): top level
``gradable``, ``score`` (a fraction in [0, 1]), ``message``, ``output`` and
``tests``, each test with ``name``, ``description``, ``points``,
``max_points``, ``message`` and ``output``. A submission that cannot be graded
at all (no file, a syntax error) is ``gradable: false`` with its reasons in
``format_errors``: PrairieLearn then shows them without using up an attempt.

PrairieLearn shows every test and the message to the student, so a check that is
not ``visible`` is left out of both; ``score`` is the grade and counts every check.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grader.exporters._common import LABELS, check_message, check_output, shown_checks, shown_summary
from grader.exporters.files import write_atomic
from grader.model.results import SubmissionResult

__all__ = ["prairielearn_ungradable", "to_prairielearn", "write_prairielearn"]


def prairielearn_ungradable(format_errors: list[str], message: str = "") -> dict[str, Any]:
    """The results document of a submission that could not be graded, with the reasons why."""
    errors = [str(e) for e in format_errors] or ["the submission could not be graded"]
    return {
        "gradable": False,
        "score": 0.0,
        "format_errors": errors,
        "message": message or "Your submission could not be graded: " + "; ".join(errors),
        "output": "",
        "tests": [],
    }


def to_prairielearn(result: SubmissionResult) -> dict[str, Any]:
    """The results.json document for ``result``.

    A result the grader could not produce (``result.error``) is not the
    student's fault: it is reported as ungradable so no attempt is used, with
    the details left to the job's log (what ``grader check`` prints).
    """
    if result.no_submission is not None:
        seen = f" (files seen: {', '.join(result.seen)})" if result.seen else ""
        return prairielearn_ungradable([f"no submission found: {result.no_submission}{seen}"])
    if result.error:
        doc = prairielearn_ungradable(
            [f"the autograder could not grade this submission ({result.error}); tell your instructor"],
            "The autograder could not grade this submission. This is not a verdict on your code.",
        )
        if result.unsafe:
            doc["message"] = f"Note: {result.unsafe}.\n{doc['message']}"
        return doc
    tests = []
    lines = []
    for check in shown_checks(result):
        tests.append(
            {
                "name": check.name,
                "description": check.description,
                "points": check.points,
                "max_points": check.max_points,
                "message": check_message(check, result.checks),
                "output": check_output(check),
            }
        )
        lines.append(f"{LABELS[check.status]:<9} {check.points:g}/{check.max_points:g}  {check.name}")
    score = result.score / result.max_score if result.max_score > 0 else 0.0
    message = shown_summary(result)
    if result.integrity:
        message += "\nIntegrity flags (for the instructor to review; flagged checks give no points):\n" + "\n".join(
            f"- {flag}" for flag in result.integrity
        )
    return {
        "gradable": True,
        "score": round(min(1.0, max(0.0, score)), 6),
        "message": message,
        "output": "\n".join(lines),
        "tests": tests,
    }


def write_prairielearn(doc: dict[str, Any], path: Path) -> None:
    """Write a results document (from :func:`to_prairielearn` or :func:`prairielearn_ungradable`)."""
    write_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False, allow_nan=False))
