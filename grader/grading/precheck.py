"""Why a submission cannot be graded at all, found before any check runs.

Some platforms (PrairieLearn) distinguish an *ungradable* submission (no file,
a syntax error: nothing to run) from a graded one that lost points, and do not
count the former as an attempt. :func:`format_errors` finds those cases on the
trusted side without running the student's code: it only reads the file and
compiles it (``compile`` does not execute anything).
"""

from __future__ import annotations

from pathlib import Path

from grader.model.assignment import Assignment

__all__ = ["format_errors"]

MAX_SOURCE_BYTES = 5 * 1024 * 1024


def _module_path(assignment: Assignment, submission: Path) -> Path | None:
    if submission.is_file():
        return submission
    candidate = submission / assignment.module_file
    return candidate if candidate.is_file() else None


def format_errors(assignment: Assignment, submission: Path) -> list[str]:
    """Reasons ``submission`` cannot be graded (an empty list when it can)."""
    submission = Path(submission)
    module_file = assignment.module_file
    if not submission.exists():
        return [f"no submission was found (expected a file named {module_file})"]
    path = _module_path(assignment, submission)
    if path is None:
        found = sorted(p.name for p in submission.iterdir() if p.suffix == ".py")[:10]
        holds = f"it holds {', '.join(found)}" if found else "it holds no .py files"
        return [f"{module_file} was not submitted ({holds}); the file must be named exactly {module_file}"]
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
