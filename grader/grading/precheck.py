"""Why a submission cannot be graded at all, found before any check runs.

Some platforms (PrairieLearn) distinguish an *ungradable* submission (no file,
a syntax error: nothing to run) from a graded one that lost points, and do not
count the former as an attempt. :func:`format_errors` finds those cases on the
trusted side without running the student's code: it only reads the file and
compiles it (``compile`` does not execute anything).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.grading.archives import unpack_student_zip
from grader.model.assignment import Assignment
from grader.model.locate import other_modules, prepare_submission

__all__ = ["format_errors"]

MAX_SOURCE_BYTES = 5 * 1024 * 1024


def format_errors(assignment: Assignment, submission: Path) -> list[str]:
    """Reasons ``submission`` cannot be graded (an empty list when it can).

    The module is found as grading finds it (:func:`grader.model.locate.prepare_submission`:
    renamed, nested, zipped, a notebook); when there is none, the one reason says what was seen.
    """
    submission = Path(submission)
    module_file = assignment.module_file
    with tempfile.TemporaryDirectory(prefix="grader-precheck-") as tmp:
        found = prepare_submission(
            submission, module_file, Path(tmp) / "w", unpack=unpack_student_zip, others=other_modules(assignment)
        )
        if not found.ok or found.module is None:
            seen = f" (files seen: {', '.join(found.seen)})" if found.seen else ""
            return [f"no submission found: {found.problem}{seen}"]
        return _compile_errors(found.module, module_file)


def _compile_errors(path: Path, module_file: str) -> list[str]:
    try:
        if path.stat().st_size > MAX_SOURCE_BYTES:
            return [f"{module_file} is larger than {MAX_SOURCE_BYTES // (1024 * 1024)} MiB"]
        source = path.read_bytes()
    except OSError as exc:
        return [f"{module_file} could not be read: {exc.strerror or exc}"]
    hint = f"run `python {module_file}` yourself to see the same error"
    try:
        compile(source, module_file, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "somewhere"
        text = (exc.text or "").strip()
        shown = f": {text}" if text else ""
        return [f"{module_file} has a syntax error at {where} ({exc.msg}){shown}; {hint}"]
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{module_file} is not valid Python source: {exc}; {hint}"]
    except (RecursionError, MemoryError):
        return [f"{module_file} is too deeply nested for Python to compile; {hint}"]
    return []
