"""Mistakes of an assignment itself (its config, checks, drivers): the instructor's, never the student's.

Plain data and pure functions every tier uses. An assignment problem is shown
as one short block, the same wherever it is found (``grader validate``, a
check that fails to import, a check calling a driver that does not exist, a
bug in a check's own code)::

    assignment error: test_squares.py:42: NameError: name 'foo' is not defined
        42 |     foo(run)

The file is named relative to the assignment folder. A graded result that met
such a problem carries the blocks in ``result.metadata[PROBLEMS_KEY]`` and its
``error`` is :data:`BROKEN`: the submission was not graded on a broken assignment.

:func:`driver_names` reads the names ``drivers.py`` defines with :mod:`ast`,
without running it, so the trusted side knows the drivers before any sandbox starts.
"""

from __future__ import annotations

import ast
import difflib
import linecache
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "BROKEN",
    "PROBLEMS_KEY",
    "AssignmentProblem",
    "driver_functions",
    "driver_names",
    "no_such_driver",
    "problem_from_exception",
    "problems_of",
    "source_line",
]

PROBLEMS_KEY = "assignment_errors"
BROKEN = "the assignment is broken (a mistake in its checks, drivers or config, not in the submission)"
MAX_WHAT = 600


@dataclass(frozen=True)
class AssignmentProblem:
    """One mistake of the assignment: where (a file of the assignment folder, a line) and what."""

    file: str
    line: int | None
    what: str
    code: str = ""
    """The line of code at ``file:line``, stripped (shown under the block's first line)."""
    level: str = "error"
    """``error`` (the assignment cannot grade) or ``warning`` (it can, but probably not as meant)."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def render(self) -> str:
        what = " ".join(self.what.split()) if "\n" not in self.what.strip() else self.what.strip()
        if len(what) > MAX_WHAT:
            what = what[: MAX_WHAT - 3] + "..."
        text = f"assignment {self.level}: {self.where}: {what}"
        if self.code and self.line:
            text += f"\n    {self.line} | {self.code}"
        return text


def problems_of(metadata: dict[str, Any]) -> list[str]:
    """The rendered assignment problems a result carries (an empty list for a sound assignment)."""
    found = metadata.get(PROBLEMS_KEY)
    if not isinstance(found, list):
        return []
    return [p for p in found if isinstance(p, str)]


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
    except (ValueError, OSError):
        return False
    return True


def _exception_line(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]


def problem_from_exception(
    exc: BaseException, folder: Path, *, stop_at: Path | None = None, what: str | None = None
) -> AssignmentProblem | None:
    """The assignment problem an exception shows, if its code at fault is in ``folder``; else ``None``.

    The frames are read from the innermost out; frames of the standard library and third-party
    packages are passed over, and the first frame in ``folder`` (the assignment) or in
    ``stop_at`` (the grader's own package) decides: the assignment's frame gives the file and
    line, the grader's means the mistake is not (visibly) the assignment's. A ``SyntaxError``
    in a file of ``folder`` is located at its own file and line. ``what`` replaces the
    exception's own line (``NameError: name 'foo' is not defined``).
    """
    folder = folder.resolve()
    text = what or _exception_line(exc)
    if isinstance(exc, SyntaxError) and exc.filename and _inside(Path(exc.filename), folder):
        path = Path(exc.filename).resolve()
        code = (exc.text or "").strip()[:200]
        return AssignmentProblem(str(path.relative_to(folder)), exc.lineno, text, code)
    frames = traceback.extract_tb(exc.__traceback__) if isinstance(exc.__traceback__, TracebackType) else []
    for frame in reversed(frames):
        path = Path(frame.filename)
        if stop_at is not None and _inside(path, stop_at):
            return None
        if _inside(path, folder):
            rel = str(path.resolve().relative_to(folder))
            return AssignmentProblem(rel, frame.lineno, text, (frame.line or "").strip()[:200])
    return None


def driver_names(path: Path) -> dict[str, int]:
    """Every name ``drivers.py`` binds at its top level (functions, classes, assignments, imports), with its line.

    Read with :mod:`ast`; nothing runs. Raises ``SyntaxError`` (and ``OSError``) as ``compile`` does.
    """
    tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    names: dict[str, int] = {}
    for node in tree.body:
        for name in _bound(node):
            names.setdefault(name, node.lineno)
    return names


def _bound(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [(alias.asname or alias.name).split(".")[0] for alias in node.names]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = []
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    if isinstance(node, (ast.If, ast.Try)):  # a driver defined under `if` or `try` still counts
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                names.extend(_bound(child))
    return names


def no_such_driver(name: str, path: Path) -> str:
    """What to say of a check calling the driver ``name``, which ``drivers.py`` (``path``) does not define."""
    known = driver_functions(path)
    close = difflib.get_close_matches(name, known, n=1)
    return (
        f"{path.name} has no driver named {name!r}"
        + (f" (did you mean {close[0]!r}?)" if close else "")
        + f"; known drivers: {', '.join(known) or 'none'}"
    )


def driver_functions(path: Path) -> list[str]:
    """The drivers a check may name: the public functions ``drivers.py`` defines at its top level."""
    tree = ast.parse(Path(path).read_bytes(), filename=str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")
    ]


def source_line(path: Path, line: int | None) -> str:
    """The stripped text of ``path`` at ``line`` (``''`` when there is none)."""
    if not line:
        return ""
    return linecache.getline(str(path), line).strip()[:200]
