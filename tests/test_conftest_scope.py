"""A grading loads the ``conftest.py`` of its assignment's folder and none above it.

pytest looks for ``conftest.py`` in every folder from its root directory's ancestors down; the
grader's pytest process, run with ``-c /dev/null``, would otherwise import one from every folder
between ``/`` and the assignment (``/tmp/conftest.py`` for an assignment under ``/tmp``, which any
user of the machine may write) into the trusted process, as the grader's user. It also spared
each grading a walk of every folder on that path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from conftest import grader_command

TINY = Path(__file__).resolve().parent / "assignments"

PLANTED = """
import os
open(os.path.join(os.path.dirname(__file__), "{marker}"), "w").close()
"""


def test_a_conftest_above_the_assignment_is_never_imported_and_the_assignments_own_is(
    grader_env: dict[str, str], tmp_path: Path
) -> None:
    course = tmp_path / "course"
    assignment, submission = course / "term" / "greet", tmp_path / "student" / "greet.py"
    shutil.copytree(TINY / "mutants_greet", assignment, ignore=shutil.ignore_patterns("__pycache__"))
    submission.parent.mkdir()
    shutil.copy(TINY / "reference" / "greet.py", submission)
    for folder in (tmp_path, course, course / "term"):
        (folder / "conftest.py").write_text(PLANTED.format(marker="planted-conftest-ran"), encoding="utf-8")
    (assignment / "conftest.py").write_text(PLANTED.format(marker="own-conftest-ran"), encoding="utf-8")
    done = subprocess.run(grader_command("check", str(assignment), str(submission)), capture_output=True, text=True,
                          env=grader_env, timeout=300)
    assert done.returncode == 0 and "all checks passed" in done.stdout, done.stdout + done.stderr
    assert not [p for p in tmp_path.rglob("planted-conftest-ran")], "a conftest.py above the assignment was imported"
    assert (assignment / "own-conftest-ran").exists(), "the assignment's own conftest.py was not imported"
