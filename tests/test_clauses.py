"""Every clause of every bundled assignment's contract names the checks that judge it (assignments/*/clauses.toml).

The table is the result of walking the contract clause by clause (docs/authoring.md, "Every clause
has a check"): each clause names at least one check that exists, or says why none can judge it, and
every check judges some clause.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

from grader.model.assignment import AssignmentError
from grader.model.clauses import CLAUSES_NAME, clause_problems, load_clauses, unjudging_checks

# Every bundled assignment, found from the folder: one added later is held to having a table too.
BUNDLED = sorted(p for p in (ROOT / "assignments").iterdir() if (p / "assignment.toml").is_file())
# The nine assignments of the course's fixed contracts: a floor, should BUNDLED ever find fewer.
COURSE = ("hello_threads", "hello_processes", "isolation", "fifo_queue", "locked_counter", "pool_map", "duplex_pipe",
          "bounded_buffer", "dining_philosophers")


def test_every_bundled_assignment_has_its_table() -> None:
    assert set(COURSE) <= {p.name for p in BUNDLED}
    missing = [p.name for p in BUNDLED if not (p / CLAUSES_NAME).is_file()]
    assert not missing, f"bundled assignments without {CLAUSES_NAME}: {', '.join(missing)}"


def _checks(folder: Path) -> set[str]:
    names = set()
    for path in folder.glob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names.update(n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test"))
    return names


@pytest.mark.parametrize("folder", BUNDLED, ids=lambda p: p.name)
def test_every_clause_has_a_check_and_every_check_a_clause(folder: Path) -> None:
    clauses = load_clauses(folder)
    assert clauses, f"{folder.name} has no {CLAUSES_NAME}"
    checks = _checks(folder)
    assert not clause_problems(clauses, checks)
    assert not unjudging_checks(clauses, checks), f"{folder.name}: checks that judge no clause"
    for clause in clauses:
        assert clause.checks or len(clause.unchecked.split()) >= 5, f"{clause.text!r}: no check and no real reason"


def test_a_table_is_held_to_the_checks_that_exist(tmp_path: Path) -> None:
    (tmp_path / CLAUSES_NAME).write_text(
        '[[clause]]\nclause = "a"\nchecks = ["test_a"]\n\n'
        '[[clause]]\nclause = "b"\nchecks = ["test_gone"]\n\n'
        '[[clause]]\nclause = "c"\n\n'
        '[[clause]]\nclause = "d"\nunchecked = "a permission, not a duty"\n',
        encoding="utf-8",
    )
    clauses = load_clauses(tmp_path)
    assert clauses is not None and [c.line for c in clauses] == [1, 5, 9, 12]
    assert clause_problems(clauses, {"test_a", "test_b"}) == [
        (5, "the clause 'b' names 'test_gone', which is no check of the assignment; checks: test_a, test_b"),
        (9, "the clause 'c' names no check: name the checks that judge it, or say in `unchecked` why none can"),
    ]
    assert unjudging_checks(clauses, {"test_a", "test_b"}) == ["test_b"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[[clause]]\nchecks = ['test_a']\n", 1, "a [[clause]] needs `clause`"),
        ("[[clause]]\nclause = 'a'\ncheck = ['test_a']\n", 1, "unknown key(s) check in a [[clause]]"),
        ("[clauses]\n", None, "unknown table or key(s) clauses"),
        ("[[clause]\n", 1, "not valid TOML"),
    ],
    ids=["no-text", "unknown-key", "unknown-table", "bad-toml"],
)
def test_a_malformed_table_names_its_line(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    (tmp_path / CLAUSES_NAME).write_text(text, encoding="utf-8")
    with pytest.raises(AssignmentError) as raised:
        load_clauses(tmp_path)
    assert raised.value.file == CLAUSES_NAME and raised.value.line == line
    assert message in raised.value.what


def test_no_table_is_no_table(tmp_path: Path) -> None:
    assert load_clauses(tmp_path) is None
