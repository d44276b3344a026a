"""``grader check``'s grading of one submission: a ``.zip`` extracted first, each check shown as it finishes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grader.exporters.terminal import NORMAL
from grader.grading.archives import safe_extract, single_folder
from grader.grading.grade import grade_submission
from grader.model.assignment import Assignment
from grader.model.results import SubmissionResult

__all__ = ["grade_shown", "unzipped"]


def unzipped(archive: Path, tmp: Path) -> Path:
    """A zipped submission, extracted safely into ``tmp`` (through folders that only wrap one folder).

    Raises :class:`grader.grading.archives.ArchiveError` for an archive that is refused or unreadable.
    """
    return single_folder(safe_extract(archive, tmp / "submission"))


def grade_shown(
    assignment: Assignment,
    graded: Path,
    shown: Path,
    *,
    student: str = "",
    check_workers: int = 1,
    unsafe: bool = False,
    verbosity: int = NORMAL,
    show_output: bool = False,
    no_colour: bool = False,
    first: Sequence[str] = (),
) -> SubmissionResult:
    """Grade ``graded``, printing each check's line as it finishes (:mod:`grader.exporters.live`), then the report.

    ``shown`` is the path the student gave (their ``.zip``, where ``graded`` is its extracted folder).
    ``first``: check ids that start first where the checks run side by side (:func:`grader.grading.grade.pytest_command`).
    """
    from grader.exporters.live import LiveReport  # rich, only where it is used

    with LiveReport(verbosity=verbosity, show_output=show_output, no_colour=no_colour) as report:
        report.start(assignment.name, student, str(shown.resolve()))
        result = grade_submission(
            assignment, graded, student=student, check_workers=check_workers, on_start=report.checks_started,
            on_progress=report.event, unsafe=unsafe, first=first,
        )
        result.submission = str(shown.resolve())
        report.finish(result)
    return result
