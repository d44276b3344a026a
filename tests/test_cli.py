"""The `grader` command, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import grader_command

CORPUS = Path(__file__).parent / "corpus" / "hello_processes"


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


def test_list_names_every_bundled_assignment(tmp_path: Path, grader_env: dict[str, str]) -> None:
    out = run(["list"], grader_env, tmp_path)
    assert out.returncode == 0
    assert "hello_processes" in out.stdout and "hello_processes.py" in out.stdout


def test_check_reference_passes_and_writes_gradescope_json(root: Path, tmp_path: Path, grader_env: dict[str, str]) -> None:
    target = tmp_path / "results.json"
    reference = str(root / "reference" / "hello_processes.py")
    out = run(["check", "hello_processes", reference, "--json", str(target)], grader_env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Score: 12/12" in out.stdout
    data = json.loads(target.read_text())
    assert data["score"] == 12 and isinstance(data["execution_time"], float)
    for test in data["tests"]:
        assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(test)


def test_check_buggy_exits_1_and_explains(tmp_path: Path, grader_env: dict[str, str]) -> None:
    out = run(["check", "hello_processes", str(CORPUS / "buggy" / "start_join_loop.py")], grader_env, tmp_path)
    assert out.returncode == 1
    assert "FAIL" in out.stdout
    assert "Observed: at most 1 of the 4 processes were running at the same time" in out.stdout
    assert "Hint: start every process in one loop" in out.stdout


def test_check_a_folder_without_the_module(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "hello.py").write_text("print('hi')\n")
    (folder / "notes.py").write_text("# scratch\n")
    out = run(["check", "hello_processes", str(folder)], grader_env, tmp_path)
    assert out.returncode == 1
    assert (
        "No submission found: expected a file named hello_processes.py (or a notebook hello_processes.ipynb), "
        "but found 2 Python files named otherwise (hello.py and notes.py)" in out.stdout
    )
    assert "rename it to hello_processes.py" in out.stdout and "Files seen: hello.py, notes.py" in out.stdout


def test_usage_errors_exit_2_without_traceback(tmp_path: Path, grader_env: dict[str, str]) -> None:
    cases = [
        (["check", "no_such_assignment", "x.py"], "unknown assignment 'no_such_assignment'"),
        (["check", "hello_processes", str(tmp_path / "missing.py")], "submission not found"),
        (["check", str(tmp_path), "x.py"], "is not an assignment folder"),
        (["check", "helo_threads", "x.py"], "unknown assignment 'helo_threads'; did you mean hello_threads?\n"),
        (["check", "zzz", "x.py"], "unknown assignment 'zzz'; bundled assignments: bounded_buffer, dining_philosophers,"),
    ]
    for args, message in cases:
        out = run(args, grader_env, tmp_path)
        assert out.returncode == 2, args
        assert message in out.stderr
        assert "Traceback" not in out.stderr


def test_instructor_assignment_folder_by_path(root: Path, tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = tmp_path / "doubling"
    folder.mkdir()
    (folder / "assignment.toml").write_text('[assignment]\nmodule = "double.py"\ntimeout = 10\n')
    (folder / "test_double.py").write_text(
        "import pytest\n\n@pytest.mark.points(4)\ndef test_double(submission):\n"
        "    assert submission.call('double', 21).value == 42\n"
    )
    student = tmp_path / "double.py"
    student.write_text("def double(x):\n    return 2 * x\n")
    out = run(["check", str(folder), str(student)], grader_env, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Score: 4/4" in out.stdout


def test_new_scaffolds_an_assignment_that_grades(tmp_path: Path, grader_env: dict[str, str]) -> None:
    out = run(["new", "squares", "--dir", str(tmp_path)], grader_env, tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "squares"
    assert {p.name for p in folder.iterdir()} >= {"assignment.toml", "README.md", "starter", "test_squares.py"}
    solution = tmp_path / "reference" / "squares.py"
    graded = run(["check", str(folder), str(solution)], grader_env, tmp_path)
    assert graded.returncode == 0, graded.stdout
    starter = run(["check", str(folder), str(folder / "starter" / "squares.py")], grader_env, tmp_path)
    assert starter.returncode == 1
    assert "NotImplementedError" in starter.stdout
    again = run(["new", "squares", "--dir", str(tmp_path)], grader_env, tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert again.stderr == f"grader: error: {folder} already exists; nothing was written (choose another name or --dir)\n"
    bad = run(["new", "not-a-name", "--dir", str(tmp_path)], grader_env, tmp_path)
    assert bad.returncode == 2 and "cannot be an assignment name" in bad.stderr


def test_new_creates_a_missing_dir_with_its_parents(tmp_path: Path, grader_env: dict[str, str]) -> None:
    target = tmp_path / "course" / "assignments"
    out = run(["new", "cubes", "--dir", str(target)], grader_env, tmp_path)
    assert out.returncode == 0, out.stderr
    assert (target / "cubes" / "assignment.toml").is_file() and (target / "reference" / "cubes.py").is_file()
    other = run(["new", "squares", "--dir", str(target)], grader_env, tmp_path)  # the folder exists: fine
    assert other.returncode == 0, other.stderr
    (tmp_path / "file").write_text("")
    blocked = run(["new", "cubes", "--dir", str(tmp_path / "file" / "sub")], grader_env, tmp_path)
    assert blocked.returncode == 2 and blocked.stderr.startswith("grader: error: cannot create the folder")
