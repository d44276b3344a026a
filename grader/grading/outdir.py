"""The ``--out`` folder of ``grader grade`` and ``grader merge``: a fresh set of reports each time.

Every run writes ``batch.json`` (:mod:`grader.grading.shards`), which lists the
files that run wrote. Before grading, the folder is looked at: the files of a
previous run are recognised from its ``batch.json``; anything else (a file
``grade`` did not write) makes the run refuse, before any grading, unless
``force`` is given. After grading, just before the new reports are written, the
previous run's files are removed, so the folder never mixes two classes'
students. Files ``grade`` did not write are never removed, not even with
``force``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.exporters.canvas import CanvasColumn
from grader.grading.shards import MANIFEST, write_manifest
from grader.model.assignment import Assignment
from grader.model.results import SubmissionResult

__all__ = ["OS_LITTER", "OutFolder", "OutFolderError", "inspect_out", "report_files", "write_results"]

STUDENTS = "students"
TOP_LEVEL = ("index.html", "grades.csv", "canvas.csv", MANIFEST)
STUDENT_SUFFIXES = (".html", ".gradescope.json", ".result.json")
OS_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".gitkeep"})
"""Files that are never counted as someone's: operating systems and git leave them in any folder."""
SHOWN = 3


class OutFolderError(ValueError):
    """The output folder holds files ``grade`` did not write (one line for the user)."""


@dataclass
class OutFolder:
    """What is in an output folder before a run: the previous run's files, and the rest."""

    path: Path
    previous: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)

    def clear_previous(self) -> None:
        """Remove the previous run's files (and ``students/`` when that leaves it empty)."""
        for file in self.previous:
            try:
                file.unlink()
            except FileNotFoundError:
                pass
        try:
            (self.path / STUDENTS).rmdir()
        except OSError:
            pass  # not there, or holds files that are not ours


def report_files(out: Path, slugs: Sequence[str]) -> list[str]:
    """The files a run with these student slugs wrote into ``out``, relative to it (for ``batch.json``)."""
    files = [name for name in TOP_LEVEL if name == MANIFEST or (out / name).is_file()]
    files += [f"{STUDENTS}/{slug}{suffix}" for slug in slugs for suffix in STUDENT_SUFFIXES]
    return files


def _listed(out: Path) -> list[str]:
    """The files the previous run's ``batch.json`` says it wrote (none without a readable one)."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    if isinstance(data.get("files"), list):
        return [str(name) for name in data["files"]]
    students = data.get("students")  # a batch.json of a grader that did not list its files
    slugs = [str(s.get("slug")) for s in students if isinstance(s, dict)] if isinstance(students, list) else []
    return [*TOP_LEVEL, *(f"{STUDENTS}/{slug}{suffix}" for slug in slugs for suffix in STUDENT_SUFFIXES)]


def _inside(out: Path, name: str) -> Path | None:
    """``out/name`` for a plain relative name (no ``..``, not absolute), else ``None``."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or any(p in ("..", ".", "") for p in parts):
        return None
    return out.joinpath(*parts)


def inspect_out(out: Path, *, force: bool = False) -> OutFolder:
    """Sort what ``out`` holds into the previous run's files and the rest; raise unless the rest is empty or ``force``."""
    folder = OutFolder(Path(out))
    if not folder.path.is_dir():
        return folder
    ours = set()
    for name in _listed(folder.path):
        path = _inside(folder.path, name)
        if path is not None and path.is_file() and not path.is_symlink():
            ours.add(path)
    for top, dirs, files in os.walk(folder.path):
        here = Path(top)
        for name in sorted(files) + sorted(d for d in dirs if (here / d).is_symlink()):
            path = here / name
            if path in ours:
                folder.previous.append(path)
            elif name not in OS_LITTER:
                folder.foreign.append(path)
    if folder.foreign and not force:
        shown = ", ".join(str(p.relative_to(folder.path)) for p in folder.foreign[:SHOWN])
        more = f" and {len(folder.foreign) - SHOWN} more" if len(folder.foreign) > SHOWN else ""
        raise OutFolderError(
            f"--out {folder.path} holds files grader grade did not write ({shown}{more}); "
            "give a new or empty folder, or --force to write the reports there anyway (those files are kept)"
        )
    return folder


def write_results(
    folder: OutFolder,
    assignment: Assignment,
    results: Sequence[SubmissionResult],
    *,
    source: str,
    heading: str,
    shard: tuple[int, int] = (1, 1),
    class_names: Sequence[str] | None = None,
    positions: Sequence[int] | None = None,
    canvas: CanvasColumn | None = None,
) -> None:
    """Replace the previous run's files in ``folder`` with the reports of ``results`` and their ``batch.json``.

    ``heading`` is the source as the class summary shows it, ``source`` as ``batch.json`` records it;
    ``class_names`` and ``positions`` place a shard's students in its whole class (default: the results);
    ``canvas`` is the Canvas assignment ``canvas.csv`` fills (see :func:`~grader.grading.batch.write_class_reports`).
    Raises :class:`OSError` when the folder cannot be written.
    """
    from grader.grading.batch import student_slugs, write_class_reports

    folder.clear_previous()
    write_class_reports(folder.path, assignment, results, source=heading, canvas=canvas)
    slugs = student_slugs([r.student for r in results])
    written = [slugs[r.student] for r in results]
    write_manifest(
        folder.path,
        assignment,
        shard=shard,
        class_names=[r.student for r in results] if class_names is None else class_names,
        positions=list(range(len(results))) if positions is None else positions,
        slugs=written,
        source=source,
        files=report_files(folder.path, written),
    )
