"""Gradebook exporter: one CSV row per student.

Columns: ``student``, ``score``, ``max_score``, then one column per check (its
id, in the order the checks ran) holding the points earned. A submission the
grader could not grade has empty score and check cells, so a gradebook import
does not mistake it for a zero. Text cells that a spreadsheet would read as a
formula (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) are
prefixed with ``'``: student names come from folder and file names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from ..results import SubmissionResult

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
        if not result.graded:
            writer.writerow([_text(result.student), "", "", *([""] * len(checks))])
            continue
        points = {c.id: _number(c.points) for c in result.checks}
        writer.writerow(
            [
                _text(result.student),
                _number(result.score),
                _number(result.max_score),
                *(points.get(c, "") for c in checks),
            ]
        )
    return buffer.getvalue()


def write_gradebook(results: Sequence[SubmissionResult], path: Path) -> None:
    """Write the gradebook CSV (UTF-8, atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(to_gradebook_csv(results), encoding="utf-8")
    tmp.replace(path)
