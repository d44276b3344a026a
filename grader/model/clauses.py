"""An assignment's clause table: each clause of its contract and the checks that judge it. Plain data.

An assignment folder may hold ``clauses.toml``, the result of walking the
contract (the student README and whatever the course fixes) clause by clause::

    [[clause]]
    clause = "hello(n, delay) prints exactly `[n] Hello!`"
    checks = ["test_hello_prints_its_greeting"]

    [[clause]]
    clause = "the greeting comes from a new process every time"
    unchecked = "why no check can judge it (then it says so, instead of naming a check)"

Every clause names at least one check of the folder's ``test_*.py`` files, or
says in ``unchecked`` why none can judge it. :func:`load_clauses` reads the
table (a malformed one raises :class:`~grader.model.assignment.AssignmentError`
with its line); :func:`clause_problems` holds it to the checks that exist.
``grader validate`` reports both, and the bundled assignments' tests require a
table for each of them in which every check judges some clause.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.model.assignment import AssignmentError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

__all__ = ["CLAUSES_NAME", "Clause", "clause_problems", "load_clauses", "unjudging_checks"]

CLAUSES_NAME = "clauses.toml"
KEYS = ("clause", "checks", "unchecked")
_HEADER = re.compile(r"^\s*\[\[\s*[\"']?clause[\"']?\s*\]\]")


@dataclass(frozen=True)
class Clause:
    """One clause of the contract: its words, the checks that judge it, or why none can."""

    text: str
    checks: tuple[str, ...]
    unchecked: str
    line: int | None


def _error(message: str, line: int | None) -> AssignmentError:
    where = f"{CLAUSES_NAME}" + (f" line {line}" if line else "")
    return AssignmentError(f"{where}: {message}", file=CLAUSES_NAME, line=line, what=message)


def _clause(entry: object, line: int | None) -> Clause:
    if not isinstance(entry, dict):
        raise _error("each [[clause]] must be a table", line)
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise _error(f"unknown key(s) {', '.join(unknown)} in a [[clause]]; known keys: {', '.join(KEYS)}", line)
    text = entry.get("clause")
    if not isinstance(text, str) or not text.strip():
        raise _error("a [[clause]] needs `clause`, the words of the contract it stands for", line)
    checks = entry.get("checks", [])
    if not isinstance(checks, list) or not all(isinstance(name, str) and name for name in checks):
        raise _error(f"`checks` of the clause {text!r} must be a list of check names", line)
    unchecked = entry.get("unchecked", "")
    if not isinstance(unchecked, str):
        raise _error(f"`unchecked` of the clause {text!r} must be a sentence: why no check judges it", line)
    return Clause(text.strip(), tuple(checks), unchecked.strip(), line)


def load_clauses(folder: Path) -> list[Clause] | None:
    """The clause table of the assignment in ``folder``, or ``None`` when it has none."""
    path = Path(folder) / CLAUSES_NAME
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        raise _error(f"not valid TOML: {exc}", int(found.group(1)) if found else None) from None
    extra = sorted(set(data) - {"clause"})
    if extra:
        raise _error(f"unknown table or key(s) {', '.join(extra)}: the file holds [[clause]] tables only", None)
    entries = data.get("clause", [])
    if not isinstance(entries, list) or not entries:
        raise _error("no [[clause]] table: list each clause of the contract and the checks that judge it", None)
    lines = [number for number, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]
    return [_clause(entry, lines[index] if index < len(lines) else None) for index, entry in enumerate(entries)]


def clause_problems(clauses: list[Clause], checks: set[str]) -> list[tuple[int | None, str]]:
    """``(line, what)`` for each clause naming a check that does not exist, or naming none without a reason."""
    problems = []
    for clause in clauses:
        for name in clause.checks:
            if name not in checks:
                problems.append((clause.line, f"the clause {clause.text!r} names {name!r}, which is no check of the "
                                 f"assignment; checks: {', '.join(sorted(checks)) or 'none'}"))
        if not clause.checks and not clause.unchecked:
            problems.append((clause.line, f"the clause {clause.text!r} names no check: name the checks that judge "
                             "it, or say in `unchecked` why none can"))
        if clause.checks and clause.unchecked:
            problems.append((clause.line, f"the clause {clause.text!r} names checks and also says it is unchecked; "
                             "keep one of the two"))
    return problems


def unjudging_checks(clauses: list[Clause], checks: set[str]) -> list[str]:
    """The checks no clause names: either the table misses a clause, or the check judges nothing of the contract."""
    named = {name for clause in clauses for name in clause.checks}
    return sorted(checks - named)
