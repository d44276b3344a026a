"""``grader grade``/``grader merge`` ``--canvas-assignment NAME --canvas-assignment-id ID``.

Which Canvas assignment ``canvas.csv`` fills: Canvas's grade import matches a column to an
existing assignment by its header ``Name (id)``; a header without the id makes the import
create a new assignment (see :mod:`grader.exporters.canvas`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grader.exporters.canvas import CanvasColumn, canvas_column, has_canvas_ids
from grader.model.results import SubmissionResult

__all__ = ["add_canvas_options", "canvas_line", "canvas_options"]


def add_canvas_options(p: argparse.ArgumentParser) -> None:
    """Add ``--canvas-assignment`` and ``--canvas-assignment-id`` to a verb that writes class reports."""
    p.add_argument(
        "--canvas-assignment",
        metavar="NAME",
        help="the Canvas assignment whose grades canvas.csv fills (default: the assignment's title); canvas.csv is "
        "written when the submissions are a Canvas export",
    )
    p.add_argument(
        "--canvas-assignment-id",
        metavar="ID",
        help="that assignment's Canvas id (the number in its URL): the column is titled 'NAME (ID)', which Canvas's "
        "grade import matches to the existing assignment; without it the import creates a new assignment",
    )


def canvas_options(args: argparse.Namespace, title: str) -> CanvasColumn:
    """The column from the options (name default: ``title``); raises ``CanvasExportError`` for what Canvas would not take.

    Called before any grading, so a mistyped id costs nothing.
    """
    name = title if args.canvas_assignment is None else args.canvas_assignment
    ident = None if args.canvas_assignment_id is None else args.canvas_assignment_id.strip()
    canvas_column(name, ident)
    return CanvasColumn(name.strip(), ident)


def canvas_line(args: argparse.Namespace, results: Sequence[SubmissionResult], out: Path, canvas: CanvasColumn) -> str:
    """The console line naming canvas.csv and its column (``""`` when no canvas.csv was written)."""
    if not has_canvas_ids(results):
        if args.canvas_assignment is not None or args.canvas_assignment_id is not None:
            print("grader: no canvas.csv written: --canvas-assignment applies to a Canvas 'Download submissions' export "
                  "(every student needs a Canvas user id)", file=sys.stderr)
        return ""
    line = f"Canvas gradebook: {out / 'canvas.csv'} (column '{canvas_column(canvas.name or '', canvas.assignment_id)}')"
    if canvas.assignment_id is None:
        line += ": importing it creates a new Canvas assignment; --canvas-assignment-id ID updates an existing one"
    return line
