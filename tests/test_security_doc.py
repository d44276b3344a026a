"""Every claim of docs/security.md names the tests that prove it, and those tests exist.

Each row of the protections tables (the sandbox's, and the evidence's) has a "Proved by" cell of ``tests/<file>.py::<test>`` names
(a ``[case]`` suffix names one case of a parametrised test: for the hostile corpus, an entry of
``tests/corpus/hostile/``). The named tests run in CI, so a claim that stops holding fails CI;
this test makes sure no claim loses its test and no test name in the document is stale.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([\w.-]+)\])?`")


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def _table_rows() -> list[str]:
    """The rows of every table whose last column is "Proved by" (the protections, the evidence protections)."""
    lines = DOC.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("| ") and line.rstrip().endswith("| Proved by |")]
    assert starts and lines[starts[0]].startswith("| Protection |")
    rows = []
    for start in starts:
        for line in lines[start + 2 :]:
            if not line.startswith("|"):
                break
            rows.append(line)
    return rows


def test_every_protection_names_the_tests_that_prove_it() -> None:
    rows = _table_rows()
    assert len(rows) >= 20, "the protections table shrank: was a claim dropped without its test?"
    for row in rows:
        proved_by = row.rstrip(" |").rsplit("|", 1)[-1]
        assert REFERENCE.search(proved_by), f"no test proves this claim of docs/security.md:\n{row[:200]}"


def test_every_test_the_document_names_exists() -> None:
    found = REFERENCE.findall(DOC.read_text(encoding="utf-8"))
    assert found
    for file, name, case in found:
        path = REPO / file
        assert path.is_file(), f"docs/security.md names {file}, which does not exist"
        assert name in _tests_in(path), f"docs/security.md names {file}::{name}, which does not exist"
        if case and name == "test_hostile_submission_is_contained":
            entry = REPO / "tests" / "corpus" / "hostile" / case
            assert entry.with_suffix(".py").is_file() or entry.is_dir(), f"no hostile corpus entry {case}"
