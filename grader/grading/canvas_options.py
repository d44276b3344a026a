"""``grader grade``/``grader merge`` ``--canvas-assignment NAME --canvas-assignment-id ID``.

Which Canvas assignment ``canvas.csv`` fills: Canvas's grade import matches a column to an
existing assignment by its header ``Name (id)``; a header without the id makes the import
create a new assignment (see :mod:`grader.exporters.canvas`). The options are checked while
the command line is parsed, so a mistyped id stops the command before anything is graded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from grader.exporters.canvas import CanvasColumn, CanvasExportError, canvas_column, has_canvas_ids
from grader.model.results import SubmissionResult

__all__ = ["add_canvas_options", "canvas_note", "canvas_options"]


def _name(text: str) -> str:
    try:
        return canvas_column(text)
    except CanvasExportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _assignment_id(text: str) -> str:
    try:
        canvas_column("-", text)
    except CanvasExportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def add_canvas_options(p: argparse.ArgumentParser) -> None:
    """Add ``--canvas-assignment`` and ``--canvas-assignment-id`` to a verb that writes class reports."""
    p.add_argument(
        "--canvas-assignment",
        metavar="NAME",
        type=_name,
        help="the Canvas assignment whose grades canvas.csv fills (default: the assignment's title); canvas.csv is "
        "written when the submissions are a Canvas export",
    )
    p.add_argument(
        "--canvas-assignment-id",
        metavar="ID",
        type=_assignment_id,
        help="that assignment's Canvas id (the number in its URL): the column is titled 'NAME (ID)', which Canvas's "
        "grade import matches to the existing assignment; without it the import creates a new assignment",
    )


def canvas_options(args: argparse.Namespace) -> CanvasColumn:
    """The column the options ask for (a ``None`` name: the assignment's title)."""
    return CanvasColumn(args.canvas_assignment, args.canvas_assignment_id)


def canvas_note(args: argparse.Namespace, results: Sequence[SubmissionResult], out: Path, title: str) -> str:
    """The console line naming canvas.csv and its column (``""`` when no canvas.csv was written)."""
    canvas = canvas_options(args)
    if not has_canvas_ids(results):
        if canvas != CanvasColumn():
            print("grader: no canvas.csv written: --canvas-assignment applies to a Canvas 'Download submissions' export "
                  "(every student needs a Canvas user id)", file=sys.stderr)
        return ""
    line = f"Canvas gradebook: {out / 'canvas.csv'} (column '{canvas_column(canvas.name or title, canvas.assignment_id)}')"
    if canvas.assignment_id is None:
        line += ": importing it creates a new Canvas assignment; --canvas-assignment-id ID updates an existing one"
    return line
