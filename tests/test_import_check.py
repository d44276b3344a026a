"""The import check judges the import at the start of a run another check makes anyway, never a run of its own.

Every run imports the student's module before it calls anything, so the bundled assignments' import
checks pass ``within=`` a shared run: what was printed and started before that run's first process
finished the import is judged, and how the call after it ended does not count.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import grader_command

from grader.grading.grade import grade_submission
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = (ROOT / "reference" / "isolation.py").read_text(encoding="utf-8")
IMPORT_CHECK = "test_no_side_effects_at_import"


def _checks(tmp_path: Path, source: str) -> dict[str, CheckResult]:
    path = tmp_path / "isolation.py"
    path.write_text(source, encoding="utf-8")
    result = grade_submission(find_assignment("isolation"), path)
    assert result.graded, result.error
    return {c.id.rsplit("::", 1)[-1]: c for c in result.checks}


def test_an_unfinished_line_and_a_thread_that_prints_later_are_the_imports(tmp_path: Path) -> None:
    """A line printed without its newline, and a thread started at import, count even though the call goes on."""
    source = REFERENCE.replace(
        "counter = 0\n",
        "counter = 0\nprint('loading', end='')\n"
        "threading.Thread(target=lambda: (threading.Event().wait(0.3), print('late'))).start()\n",
    )
    check = _checks(tmp_path, source)[IMPORT_CHECK]
    assert check.status is Status.FAILED
    assert "importing isolation.py started 1 thread(s) and printed ['loading']" in check.message, check.message


def test_a_call_that_deadlocks_after_a_clean_import_costs_the_import_check_nothing(tmp_path: Path) -> None:
    source = REFERENCE.replace("    global counter\n", "    global counter\n    threading.Event().wait()\n")
    checks = _checks(tmp_path, source)
    assert checks["test_increment_adds_times"].status is Status.TIMED_OUT, checks["test_increment_adds_times"].message
    assert checks[IMPORT_CHECK].status is Status.PASSED, checks[IMPORT_CHECK].message


def test_an_import_that_never_ends_fails_the_import_check_as_the_import(tmp_path: Path) -> None:
    source = REFERENCE.replace("counter = 0\n", "counter = 0\nthreading.Event().wait()\n")
    check = _checks(tmp_path, source)[IMPORT_CHECK]
    assert check.status is Status.TIMED_OUT
    assert check.message.startswith("import isolation "), check.message


@pytest.mark.parametrize("assignment", ["isolation", "pool_map"])
def test_grading_a_reference_makes_no_run_that_only_imports(
    assignment: str, tmp_path: Path, grader_env: dict[str, str]
) -> None:
    log = tmp_path / "runs.jsonl"
    module = find_assignment(assignment).module_file
    done = subprocess.run(
        grader_command("check", assignment, str(ROOT / "reference" / module)),
        capture_output=True, text=True, env={**grader_env, "GRADER_RUN_LOG": str(log)}, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    labels = [json.loads(line)["label"] for line in log.read_text().splitlines()]
    assert labels and not [label for label in labels if label.startswith("import ")], labels
