"""Canvas exporter: a gradebook CSV that Canvas's "Import" of grades accepts.

Followed: Canvas's gradebook export/import format (Instructure guides "How do I
import grades in the Gradebook?" and the columns of a gradebook export): the
columns ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``,
then one column per assignment. Canvas matches a row to a student by ``ID``,
``SIS User ID`` or ``SIS Login ID``, so every row needs at least one of them.
An assignment column titled ``Name (12345)`` updates the Canvas assignment
with id 12345 (the number in the assignment's URL); a plain title creates a
new assignment on import (``grader grade --canvas-assignment NAME
--canvas-assignment-id ID`` gives both). The optional
second row ``Points Possible`` is the one a Canvas export writes. A submission
the grader could not grade gets an empty cell, which leaves that grade alone.

The student columns come from each result's ``metadata``:

==================  =========================================================
CSV column          metadata key (first found)
==================  =========================================================
Student             ``canvas_name``, ``student_name``, else ``result.student``
ID                  ``canvas_id``
SIS User ID         ``sis_user_id``
SIS Login ID        ``sis_login_id``
Section             ``section``
==================  =========================================================
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from grader.exporters.files import write_atomic
from grader.model.results import SubmissionResult

__all__ = [
    "CANVAS_COLUMNS", "CanvasColumn", "CanvasExportError", "canvas_column", "canvas_csv", "has_canvas_ids", "write_canvas_csv",
]

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
_ID_KEYS = ("canvas_id", "sis_user_id", "sis_login_id")


class CanvasExportError(ValueError):
    """The results cannot be turned into a gradebook Canvas would import correctly."""


class CanvasColumn(NamedTuple):
    """The Canvas assignment a gradebook column fills: its name (``None``: the grader's title) and Canvas id."""

    name: str | None = None
    assignment_id: str | None = None


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()


def _row(result: SubmissionResult) -> list[str]:
    meta = result.metadata
    name = _text(meta.get("canvas_name")) or _text(meta.get("student_name")) or _text(result.student)
    return [
        name,
        _text(meta.get("canvas_id")),
        _text(meta.get("sis_user_id")),
        _text(meta.get("sis_login_id")),
        _text(meta.get("section")),
    ]


def _score(result: SubmissionResult) -> str:
    return f"{result.score:g}" if result.graded else ""


def has_canvas_ids(results: Sequence[SubmissionResult]) -> bool:
    """Whether every result came from a Canvas export (``metadata["canvas_id"]``): then ``canvas.csv`` is written."""
    return bool(results) and all(r.metadata.get("canvas_id") for r in results)


def canvas_column(assignment: str, assignment_id: int | str | None = None) -> str:
    """The assignment column's header: ``"Name (12345)"`` with an id (Canvas updates that assignment), else ``"Name"``.

    Raises :class:`CanvasExportError` for an empty name or an id that is not a Canvas id (digits).
    """
    title = assignment.strip()
    if not title:
        raise CanvasExportError("the assignment column needs a title")
    if assignment_id is None:
        return title
    ident = str(assignment_id).strip()
    if not ident.isdigit():
        raise CanvasExportError(f"a Canvas assignment id is a number (the one in the assignment's URL), got {assignment_id!r}")
    return f"{title} ({ident})"


def canvas_csv(
    results: Iterable[SubmissionResult],
    assignment: str,
    *,
    assignment_id: int | str | None = None,
    points_possible: float | None = None,
) -> str:
    """The gradebook CSV text for ``results`` with one assignment column.

    ``assignment`` is the column's title; with ``assignment_id`` the title
    becomes ``"assignment (id)"`` so Canvas updates that existing assignment.
    ``points_possible`` adds Canvas's ``Points Possible`` row. Raises
    :class:`CanvasExportError` when a result has no Canvas id at all or two
    results are for the same student.
    """
    results = list(results)
    title = canvas_column(assignment, assignment_id)
    missing = [r.student or r.submission for r in results if not any(_text(r.metadata.get(k)) for k in _ID_KEYS)]
    if missing:
        raise CanvasExportError(
            f"{len(missing)} result(s) have no canvas_id, sis_user_id or sis_login_id in their metadata, "
            f"so Canvas could not match them to a student: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    seen: dict[tuple[str, str], str] = {}
    rows = []
    for result in results:
        row = _row(result)
        for key, value in zip(_ID_KEYS, row[1:4]):
            if value:
                if (key, value) in seen:
                    raise CanvasExportError(
                        f"two results for the same student ({key} {value}): "
                        f"{seen[(key, value)]} and {result.submission}"
                    )
                seen[(key, value)] = result.submission
        rows.append([*row, _score(result)])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_COLUMNS, title])
    if points_possible is not None:
        writer.writerow(["    Points Possible", "", "", "", "", f"{points_possible:g}"])
    writer.writerows(rows)
    return buffer.getvalue()


def write_canvas_csv(
    results: Iterable[SubmissionResult],
    path: Path,
    assignment: str,
    *,
    assignment_id: int | str | None = None,
    points_possible: float | None = None,
) -> None:
    """Write :func:`canvas_csv` to ``path`` (UTF-8 with a byte-order mark, which spreadsheet programs expect)."""
    text = canvas_csv(results, assignment, assignment_id=assignment_id, points_possible=points_possible)
    write_atomic(path, text, encoding="utf-8-sig")
