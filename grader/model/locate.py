"""Finding the student's module in a submission as it really arrives.

Students rename files (``HelloThreads.py``), LMSs rename them again
(``hello_threads (1).py``, ``hello_threads-2.py``, Canvas's
``name_12345_67890_hello_threads.py``), folders get nested (``lab2/hello_threads.py``)
or zipped, and some work arrives as a Jupyter notebook. :func:`prepare_submission`
turns any of those into something the checks can run: the submission itself
when the module already sits at its top under the assignment's file name, else a
*staged* folder (in a work folder the caller owns) holding the module under that
name next to the files that were beside it. Both sides use it: the controller
(``grader check``, ``grader grade``, the Gradescope autograder) before pytest starts,
and :class:`grader.checks.Submission` in the pytest process, so a submission given
to pytest directly is read the same way.

The module is found, in this order (the first rule that finds anything decides):

1. a ``.py`` file named exactly like the assignment's module (``hello_threads.py``);
2. a ``.py`` file whose name only differs by case, spaces, ``-``/``_``, an LMS
   suffix (`` (1)``, ``-2``, ``_2``) or Canvas's ``name_userid_submissionid_`` prefix;
3. a notebook (``.ipynb``) named that way;
4. the only ``.py`` file of the submission (unless it is another assignment's module);
5. the only notebook, when there is no ``.py`` file at all.

Folders are searched :data:`MAX_DEPTH` levels deep, skipping ``__MACOSX``, version
control, caches and virtual environments; ``.zip`` files found in them are opened
(with the ``unpack`` function the caller gives: the safe extractor of
:mod:`grader.grading.archives`) and searched as well. Two files that a rule finds
equally are never guessed between: that is "no submission found", naming both.
Nothing here runs student code: notebooks are read as JSON (nbformat 4) and their
code cells joined (:func:`notebook_code`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader.model.assignment import CONFIG_NAME, Assignment, AssignmentError, bundled_assignments

__all__ = [
    "MAX_DEPTH",
    "Found",
    "NotebookError",
    "files_of",
    "matches_module",
    "name_key",
    "notebook_code",
    "other_modules",
    "prepare_submission",
]

MAX_DEPTH = 4
"""Folders below the submission's top that are searched (``a/b/c/d/hello_threads.py`` is the deepest)."""
MAX_ENTRIES = 5000
"""Files and folders looked at in one submission, zips' contents included."""
MAX_ZIPS = 4
MAX_SHOWN = 15
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_STAGED_BYTES = 20 * 1024 * 1024
MAX_STAGED_FILES = 2000
SKIP_DIRS = frozenset(
    {"__MACOSX", "__pycache__", ".git", ".hg", ".svn", "venv", ".venv", "env", "site-packages", "node_modules",
     ".ipynb_checkpoints", ".mypy_cache", ".pytest_cache", ".idea", ".vscode"}
)
_CANVAS_PREFIX = re.compile(r"^.+?(?:_LATE)?_\d+_\d+_(?P<file>.+)$", re.IGNORECASE)
_LMS_SUFFIX = re.compile(r"(?:\s*\(\d+\)|[-_ ]\d+|\s+copy)$", re.IGNORECASE)
_SQUASH = re.compile(r"[\s_\-.]+")

Unpack = Callable[[Path, Path], object]
"""Extract the zip ``archive`` into the new folder ``dest``; raises ``ValueError`` or ``OSError`` when refused."""


class NotebookError(ValueError):
    """A notebook could not be read (not JSON, not nbformat 4, too large)."""


@dataclass(frozen=True)
class _File:
    path: Path
    shown: str  # as the student knows it: "lab2/HelloThreads.py", "lab2.zip/lab2/hello_threads.py"

    @property
    def suffix(self) -> str:
        return self.path.suffix.lower()


@dataclass
class Found:
    """What :func:`prepare_submission` found: what to grade, or why there is nothing to grade."""

    path: Path | None = None
    """What to grade: the submission itself, or a staged folder with the module at its top."""
    module: Path | None = None
    """The module file inside ``path`` (``path`` itself for a one-file submission)."""
    graded_file: str = ""
    """The file graded, as the student named it, when it is not the module's name at the submission's top."""
    notes: list[str] = field(default_factory=list)
    """Sentences for the report: which file was graded, what was dropped from a notebook."""
    problem: str = ""
    """Why nothing gradable was found: what was seen, what was expected, what to do ("" when found)."""
    seen: list[str] = field(default_factory=list)
    """The files seen in the submission (at most :data:`MAX_SHOWN`, then a count of the rest)."""

    @property
    def ok(self) -> bool:
        return self.module is not None and not self.problem


# -- names ---------------------------------------------------------------------------


def name_key(name: str) -> str:
    """A file stem reduced for comparison: lower case, without spaces, ``-``, ``_`` and dots."""
    return _SQUASH.sub("", name.lower())


def _name_forms(filename: str) -> Iterator[str]:
    """The keys a file name may stand for: itself, without Canvas's prefix, without LMS suffixes."""
    stem = filename.rsplit(".", 1)[0] if "." in filename else filename
    stems = [stem]
    canvas = _CANVAS_PREFIX.match(stem)
    if canvas:
        stems.append(canvas["file"])
    for text in stems:
        for _ in range(4):
            yield name_key(text)
            shorter = _LMS_SUFFIX.sub("", text)
            if shorter == text or not shorter:
                break
            text = shorter


def matches_module(filename: str, module_file: str) -> bool:
    """Whether ``filename`` (a ``.py`` or ``.ipynb`` name) names ``module_file`` once normalised.

    ``HelloThreads.py``, ``hello-threads.py``, ``hello_threads (1).py``, ``hello_threads_2.py``,
    ``Hello Threads.ipynb`` and ``ann_12345_67890_hello_threads-1.py`` all name ``hello_threads.py``;
    ``hello_threads_final.py`` and ``test_hello_threads.py`` do not.
    """
    want = name_key(module_file[:-3] if module_file.endswith(".py") else module_file)
    return any(form == want for form in _name_forms(filename))


# -- notebooks -------------------------------------------------------------------------


def _cell_lines(cell: object) -> list[str]:
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return []
    source = cell.get("source", "")
    if isinstance(source, list):
        source = "".join(str(part) for part in source)
    if not isinstance(source, str):
        raise NotebookError("a code cell's source is neither text nor a list of lines")
    return source.splitlines()


def notebook_code(data: bytes) -> tuple[str, list[str]]:
    """The code cells of a notebook (nbformat 4 JSON) as one module, and the lines dropped.

    IPython's magics (``%timeit ...``, a whole ``%%time`` cell) and shell lines
    (``!pip install ...``) are not Python: they are dropped (an indented one
    becomes ``pass``, so its block stays valid). Each cell starts with a
    ``# cell N`` comment, so a line number in a message can be traced back.
    Raises :class:`NotebookError` when ``data`` is not such a notebook.
    """
    if len(data) > MAX_NOTEBOOK_BYTES:
        raise NotebookError(f"it is larger than {MAX_NOTEBOOK_BYTES // (1024 * 1024)} MiB")
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotebookError(f"it is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cells"), list):
        raise NotebookError("it has no list of cells (only nbformat 4 notebooks are read)")
    if doc.get("nbformat", 4) != 4:
        raise NotebookError(f"it is nbformat {doc.get('nbformat')!r}; only nbformat 4 notebooks are read")
    parts: list[str] = []
    dropped: list[str] = []
    for number, cell in enumerate(doc["cells"], start=1):
        lines = _cell_lines(cell)
        if not lines:
            continue
        if lines[0].lstrip().startswith("%%"):  # a cell magic: the whole cell is IPython's
            dropped.extend(line.strip() for line in lines if line.strip())
            continue
        kept = [f"# cell {number}"]
        for line in lines:
            stripped = line.lstrip()
            if stripped.startswith(("%", "!")):
                dropped.append(stripped)
                indent = line[: len(line) - len(stripped)]
                kept.append(f"{indent}pass" if indent else "")
            else:
                kept.append(line)
        parts.append("\n".join(kept))
    return "\n\n\n".join(parts) + "\n", dropped


def _dropped_note(notebook: str, dropped: list[str]) -> str:
    examples = ", ".join(f"`{line[:40]}`" for line in dropped[:3])
    more = f" and {len(dropped) - 3} more" if len(dropped) > 3 else ""
    lines = "line" if len(dropped) == 1 else "lines"
    return (
        f"{len(dropped)} {lines} of {notebook} dropped: IPython magics and shell commands are not Python "
        f"({examples}{more}); the rest of its code cells was graded"
    )


# -- searching ----------------------------------------------------------------------------


def _is_venv(folder: Path) -> bool:
    return (folder / "pyvenv.cfg").is_file()


def _walk(root: Path, prefix: str, budget: list[int]) -> Iterator[_File]:
    """The regular files under ``root`` (no links), sorted, at most :data:`MAX_DEPTH` folders deep."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        depth = len(here.relative_to(root).parts)
        dirnames[:] = sorted(
            d for d in dirnames
            if depth < MAX_DEPTH and d not in SKIP_DIRS and not d.startswith(".")
            and not os.path.islink(os.path.join(dirpath, d)) and not _is_venv(here / d)
        )
        budget[0] -= len(dirnames)
        for name in sorted(filenames):
            path = here / name
            if name.startswith(".") or path.is_symlink() or not path.is_file():
                continue
            budget[0] -= 1
            if budget[0] < 0:
                return
            yield _File(path, prefix + path.relative_to(root).as_posix())


def files_of(root: Path) -> Iterator[Path]:
    """The regular files of the submission folder ``root`` that :func:`prepare_submission` looks at, sorted.

    No links, no virtual environment or tool folder (:data:`SKIP_DIRS`), at most :data:`MAX_DEPTH` folders
    deep and :data:`MAX_ENTRIES` files and folders; zips are not opened.
    """
    for item in _walk(root, "", [MAX_ENTRIES]):
        yield item.path


def _scan(root: Path, workdir: Path, unpack: Unpack | None) -> tuple[list[_File], list[str]]:
    """Every file of the folder ``root``, zips' contents included; and the zips that could not be opened."""
    files: list[_File] = []
    refused: list[str] = []
    budget = [MAX_ENTRIES]
    zips = 0
    for item in list(_walk(root, "", budget)):
        files.append(item)
        if item.suffix != ".zip" or unpack is None:
            continue
        if zips >= MAX_ZIPS:
            refused.append(f"{item.shown} (not opened: more than {MAX_ZIPS} zips)")
            continue
        zips += 1
        dest = workdir / "unzipped" / str(zips)
        try:
            unpack(item.path, dest)
        except (ValueError, OSError) as exc:
            refused.append(f"{item.shown} (not opened: {exc})")
            continue
        files.extend(_walk(dest, item.shown + "/", budget))
    return files, refused


def _listing(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _shown(files: list[_File]) -> list[str]:
    names = [f.shown for f in files]
    if len(names) > MAX_SHOWN:
        return names[:MAX_SHOWN] + [f"... and {len(names) - MAX_SHOWN} more"]
    return names


def _choose(files: list[_File], module_file: str, others: Iterable[str]) -> _File | str:
    """The one file to grade, or why there is none (observed, expected, what to do)."""
    pys = [f for f in files if f.suffix == ".py"]
    notebooks = [f for f in files if f.suffix == ".ipynb"]
    tiers = [
        [f for f in pys if f.path.name == module_file],
        [f for f in pys if matches_module(f.path.name, module_file)],
        [f for f in notebooks if matches_module(f.path.name, module_file)],
    ]
    for tier in tiers:
        if len(tier) == 1:
            return tier[0]
        if tier:
            return (
                f"found {_listing([f.shown for f in tier[:6]])}, and any of them could be {module_file}: "
                "keep one (delete or rename the others) and submit again"
            )
    expected = f"expected a file named {module_file} (or a notebook {module_file[:-3]}.ipynb)"
    if len(pys) == 1:
        other = next((m for m in others if matches_module(pys[0].path.name, m)), None)
        if other is None:
            return pys[0]
        return (
            f"{expected}, but the only Python file is {pys[0].shown}, the file of the {other[:-3]} assignment: "
            "check that you submitted this assignment's work"
        )
    if pys:
        return (
            f"{expected}, but found {len(pys)} Python files named otherwise ({_listing([f.shown for f in pys[:6]])}) "
            f"and no way to tell which is your solution: rename it to {module_file}"
        )
    if len(notebooks) == 1:
        return notebooks[0]
    if notebooks:
        return f"{expected}, but found {len(notebooks)} notebooks ({_listing([f.shown for f in notebooks[:6]])}): keep one"
    if not files:
        return f"the submission is empty; {expected}"
    return f"{expected}; the submission holds no Python file or notebook"


def other_modules(assignment: Assignment) -> list[str]:
    """The module files of the bundled assignments and of the assignment folders beside ``assignment``'s."""
    try:
        found = {a.module_file for a in bundled_assignments()}
    except (AssignmentError, OSError):
        found = set()
    try:
        siblings = sorted(p for p in assignment.path.parent.iterdir() if (p / CONFIG_NAME).is_file())
    except OSError:
        siblings = []
    for folder in siblings:
        try:
            found.add(Assignment.load(folder).module_file)
        except (AssignmentError, OSError):
            continue
    found.discard(assignment.module_file)
    return sorted(found)


# -- staging ----------------------------------------------------------------------------


def _copy_beside(folder: Path, dest: Path, skip: Path) -> int:
    """Copy ``folder`` (bounded, no links, no caches) into ``dest`` except ``skip``; how many files were left out."""
    left_out = 0
    total = count = 0
    budget = [MAX_ENTRIES]
    for item in _walk(folder, "", budget):
        if item.path == skip or item.suffix in (".zip", ".ipynb"):
            continue
        size = item.path.stat().st_size
        if count + 1 > MAX_STAGED_FILES or total + size > MAX_STAGED_BYTES:
            left_out += 1
            continue
        total, count = total + size, count + 1
        target = dest / item.shown
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(item.path, target)
    return left_out


def _stage(chosen: _File, module_file: str, workdir: Path, notes: list[str]) -> tuple[Path, Path]:
    """A folder holding ``chosen`` as ``module_file`` and the files that were beside it."""
    staged = workdir / "staged"
    staged.mkdir(parents=True)
    left_out = _copy_beside(chosen.path.parent, staged, chosen.path)
    if left_out:
        notes.append(f"{left_out} file(s) beside {chosen.shown} were not copied (more than {MAX_STAGED_FILES} files "
                     f"or {MAX_STAGED_BYTES // (1024 * 1024)} MiB)")
    module = staged / module_file
    if chosen.suffix == ".ipynb":
        code, dropped = notebook_code(chosen.path.read_bytes())
        module.write_text(code, encoding="utf-8")
        if dropped:
            notes.append(_dropped_note(chosen.path.name, dropped))
    else:
        shutil.copyfile(chosen.path, module)
    return staged, module


def _graded(chosen: _File, module_file: str, workdir: Path, seen: list[str]) -> Found:
    notes = [f"graded {chosen.shown} as {module_file}"]
    try:
        path, module = _stage(chosen, module_file, workdir, notes)
    except NotebookError as exc:
        return Found(
            problem=f"{chosen.shown} is not a notebook Jupyter can read: {exc}; save it again from Jupyter "
            f"or submit {module_file}",
            seen=seen,
        )
    return Found(path=path, module=module, graded_file=chosen.shown, notes=notes, seen=seen)


def prepare_submission(
    submission: Path,
    module_file: str,
    workdir: Path,
    *,
    unpack: Unpack | None = None,
    others: Iterable[str] = (),
) -> Found:
    """Find the module in ``submission`` (a folder, a ``.py`` file, a notebook or a zip) and make it gradable.

    ``workdir`` is a folder that does not exist yet (or is empty) and lives as long as the
    grading does: zips are unpacked and a staged folder is made there when needed.
    ``unpack`` opens zips (without it they are only listed); ``others`` are the module
    files of other assignments (a lone ``fifo_queue.py`` is not taken for ``hello_threads.py``).
    A ``.py`` file given as the submission is graded as it is, whatever its name.
    """
    submission = Path(submission)
    workdir = Path(workdir)
    if not submission.exists():
        return Found(problem=f"the submission {submission.name} does not exist; expected a file named {module_file}")
    suffix = submission.suffix.lower()
    if submission.is_file() and suffix == ".py":
        return Found(path=submission, module=submission)
    if submission.is_file() and suffix == ".ipynb":
        return _graded(_File(submission, submission.name), module_file, workdir, [submission.name])
    if submission.is_file() and suffix == ".zip" and unpack is not None:
        try:
            unpack(submission, workdir / "archive")
        except (ValueError, OSError) as exc:
            return Found(problem=f"{submission.name} could not be opened: {exc}", seen=[submission.name])
        return _prepare_folder(workdir / "archive", module_file, workdir, unpack, others, prefix=submission.name + "/")
    if submission.is_file():
        return Found(
            problem=f"{submission.name} is not a Python file (.py), a notebook (.ipynb) or a zip; "
            f"expected a file named {module_file}",
            seen=[submission.name],
        )
    return _prepare_folder(submission, module_file, workdir, unpack, others)


def _prepare_folder(
    folder: Path, module_file: str, workdir: Path, unpack: Unpack | None, others: Iterable[str], prefix: str = ""
) -> Found:
    files, refused = _scan(folder, workdir, unpack)
    if prefix:
        files = [_File(f.path, prefix + f.shown) for f in files]
    seen = _shown(files) + refused
    chosen = _choose(files, module_file, [m for m in others if m != module_file])
    if isinstance(chosen, str):
        return Found(problem=chosen, seen=seen)
    if chosen.path == folder / module_file:
        return Found(path=folder, module=chosen.path, seen=seen)
    return _graded(chosen, module_file, workdir, seen)
