"""Gradebook exporter: one CSV row per student.

Columns: ``student``, ``score``, ``max_score``, then one column per check (its
id, in the order the checks ran) holding the points earned. A submission the
grader could not grade has empty score and check cells, so a gradebook import
does not mistake it for a zero. A group submission (``metadata["submitters"]``
with more than one person, as read from a Gradescope export) gives one row per
member, each with the group's points. Text cells that a spreadsheet would read
as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are
prefixed with ``'``: student names come from folder and file names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from grader.exporters.files import write_atomic
from grader.model.results import SubmissionResult

__all__ = ["gradebook_columns", "to_gradebook_csv", "write_gradebook"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def _number(value: float) -> str:
    return f"{value:g}"


def gradebook_columns(results: Sequence[SubmissionResult]) -> list[str]:
    """The check ids of all results, in the order they first appear."""
    columns: list[str] = []
    for result in results:
        for check in result.checks:
            if check.id not in columns:
                columns.append(check.id)
    return columns


def to_gradebook_csv(results: Sequence[SubmissionResult]) -> str:
    """The gradebook as CSV text."""
    checks = gradebook_columns(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *checks])
    for result in results:
        if result.graded:
            points = {c.id: _number(c.points) for c in result.checks}
            cells = [_number(result.score), _number(result.max_score), *(points.get(c, "") for c in checks)]
        else:
            cells = ["", "", *([""] * len(checks))]
        for student in _members(result):
            writer.writerow([_text(student), *cells])
    return buffer.getvalue()


def _members(result: SubmissionResult) -> list[str]:
    submitters = result.metadata.get("submitters")
    if isinstance(submitters, list) and len(submitters) > 1:
        names = [str(p.get("name") or p.get("email") or p.get("sid") or "") for p in submitters if isinstance(p, dict)]
        if all(names):
            return names
    return [result.student]


def write_gradebook(results: Sequence[SubmissionResult], path: Path) -> None:
    """Write the gradebook CSV (UTF-8, atomically)."""
    write_atomic(path, to_gradebook_csv(results))
