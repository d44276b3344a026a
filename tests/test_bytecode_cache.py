"""The trusted processes of a grading keep their bytecode in a folder of their own, never beside the files graded.

Without it, where no bytecode lies beside the grader's sources (an editable install, or
``PYTHONDONTWRITEBYTECODE`` set), every pytest process and check worker of every grading compiles
pytest's plugins, the grader and the checks again.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import grader_command

from grader.grading.grade import BYTECODE_CACHE_ENV, bytecode_cache, pytest_environment

TINY = Path(__file__).resolve().parent / "assignments"


def test_the_pytest_process_writes_bytecode_only_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BYTECODE_CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = pytest_environment()
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "cache") and "PYTHONDONTWRITEBYTECODE" not in env
    assert (tmp_path / "cache").stat().st_mode & 0o777 == 0o700


def test_off_or_a_folder_others_may_write_to_means_no_bytecode_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BYTECODE_CACHE_ENV, "off")
    env = pytest_environment()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1" and "PYTHONPYCACHEPREFIX" not in env
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # anyone could plant bytecode there that the grader would then run
    monkeypatch.setenv(BYTECODE_CACHE_ENV, str(shared))
    assert bytecode_cache() is None
    assert pytest_environment()["PYTHONDONTWRITEBYTECODE"] == "1"


def test_a_grading_fills_the_cache_and_leaves_the_assignment_and_submission_untouched(
    grader_env: dict[str, str], tmp_path: Path
) -> None:
    assignment, submission = tmp_path / "greet", tmp_path / "student" / "greet.py"
    shutil.copytree(TINY / "mutants_greet", assignment)
    submission.parent.mkdir()
    shutil.copy(TINY / "reference" / "greet.py", submission)
    cache = tmp_path / "cache"
    env = dict(grader_env, **{BYTECODE_CACHE_ENV: str(cache)})
    for _ in range(2):
        done = subprocess.run(grader_command("check", str(assignment), str(submission)), capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0 and "all checks passed" in done.stdout, done.stdout + done.stderr
    cached = {p.name.split(".")[0] for p in cache.rglob("*.pyc")}
    assert {"plugin", "sandbox", "test_greet"} <= cached, sorted(cached)
    assert not list(assignment.rglob("__pycache__")) and not list(submission.parent.rglob("__pycache__"))
