"""The PrairieLearn and GitHub Classroom examples in docs/examples work as documented."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from lms_schemas import decode_github_output, strict_json, validate_github, validate_prairielearn

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "docs" / "examples"
QUESTION = EXAMPLES / "prairielearn" / "questions" / "hello_processes"
WORKFLOW = EXAMPLES / "github-classroom" / "classroom.yml"
REFERENCE = REPO / "reference" / "hello_processes.py"
BUGGY = REPO / "tests" / "corpus" / "hello_processes" / "buggy"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the examples are shell scripts")


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    """A folder with a `grader` command running this checkout's grader, as the course image would have."""
    folder = tmp_path / "bin"
    folder.mkdir()
    shim = folder / "grader"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m grader "$@"\n')
    shim.chmod(0o755)
    return folder


def _env(bin_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT", "GRADE_ROOT", "PYTEST_ADDOPTS")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(bin_dir.parent)
    env.update(extra)
    return env


def test_prairielearn_question_points_at_its_entrypoint() -> None:
    info = json.loads((QUESTION / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and options["enabled"] is True
    assert options["entrypoint"] == "/grade/tests/run.sh"
    assert os.access(QUESTION / "tests" / "run.sh", os.X_OK)
    assert 'file-name="hello_processes.py"' in (QUESTION / "question.html").read_text()


def _grade_pl(tmp_path: Path, bin_dir: Path, submitted: Path | None) -> dict:
    grade = tmp_path / "grade"
    shutil.rmtree(grade, ignore_errors=True)
    (grade / "student").mkdir(parents=True)
    if submitted is not None:
        shutil.copyfile(submitted, grade / "student" / "hello_processes.py")
    run = subprocess.run([str(QUESTION / "tests" / "run.sh")], capture_output=True, text=True, timeout=600,
                         env=_env(bin_dir, GRADE_ROOT=str(grade)), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    doc = strict_json((grade / "results" / "results.json").read_text())
    assert validate_prairielearn(doc) == [], doc
    return doc


def test_prairielearn_entrypoint_grades_and_rejects(tmp_path: Path, bin_dir: Path) -> None:
    doc = _grade_pl(tmp_path, bin_dir, REFERENCE)
    assert doc["gradable"] is True and doc["score"] == 1
    assert all(t["points"] == t["max_points"] for t in doc["tests"])
    doc = _grade_pl(tmp_path, bin_dir, BUGGY / "syntax_error.py")
    assert doc["gradable"] is False and "syntax error" in doc["format_errors"][0]
    doc = _grade_pl(tmp_path, bin_dir, None)
    assert doc["gradable"] is False and "no submission found" in doc["format_errors"][0]


def test_github_workflow_step_feeds_the_reporter(tmp_path: Path, bin_dir: Path) -> None:
    text = WORKFLOW.read_text()
    step = re.search(r"id: (\S+)\n(?:\s+#.*\n)*\s+run: (.+)\n", text)
    assert step, "the grading step (an id, then a one-line run:) was not found"
    step_id, command = step.group(1), step.group(2)
    runners = re.search(r"runners: (\S+)", text)
    assert runners and runners.group(1) == step_id
    assert f'{step_id.upper()}_RESULTS: "${{{{ steps.{step_id}.outputs.result }}}}"' in text
    shutil.copyfile(BUGGY / "no_join.py", tmp_path / "hello_processes.py")
    output = tmp_path / "github_output"
    output.touch()
    # GitHub Actions runs `run:` lines with `bash -e`; a submission that lost points must not fail the step.
    run = subprocess.run(["bash", "-e", "-c", command], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                         env=_env(bin_dir, GITHUB_OUTPUT=str(output)))
    assert run.returncode == 0, run.stdout + run.stderr
    doc = decode_github_output(output.read_text())
    assert validate_github(doc) == [] and doc["status"] == "fail" and doc["max_score"] == 14
    assert any(t["status"] == "fail" and "never joined" in t["message"] for t in doc["tests"])
