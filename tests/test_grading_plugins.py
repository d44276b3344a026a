"""The pytest plugins a grading's pytest process runs with: the fixtures an instructor's checks use, and
not pytest's ``unraisableexception``.

That plugin ends every pytest process with full garbage collections, to report an exception raised in a
``__del__`` as a warning, which no grade reads: about a sixth of the pytest process's own CPU, spent after
its checks (docs/scale.md). Without it Python prints such an exception in the pytest log, and the check's result is
the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import grader_command

TINY = Path(__file__).resolve().parent / "assignments"

RECORDER = """
import json, os


def pytest_configure(config):
    names = sorted(name for name, plugin in config.pluginmanager.list_name_plugin() if plugin is not None)
    with open(os.path.join(os.path.dirname(__file__), f"plugins-{os.getpid()}.json"), "w") as out:
        json.dump(names, out)
"""

CHECK = '''

class _Noisy:
    def __del__(self):
        raise RuntimeError("raised in __del__")


def test_fixtures_of_pytest_are_there(tmp_path, monkeypatch, capsys, caplog, recwarn, request):
    """The fixtures pytest's own plugins give a check, and an exception in a __del__ that fails nothing."""
    noisy = _Noisy()
    del noisy  # its __del__ raises here: Python prints it in the pytest log, and the check goes on
    monkeypatch.setenv("GRADER_PLUGIN_TEST", "1")
    (tmp_path / "f").write_text("x")
    print("out")
    assert capsys.readouterr().out == "out\\n" and (tmp_path / "f").read_text() == "x"
'''


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_grading_runs_without_unraisableexception_and_keeps_pytests_fixtures(
    grader_env: dict[str, str], tmp_path: Path, workers: str
) -> None:
    assignment, submission = tmp_path / "greet", tmp_path / "student" / "greet.py"
    shutil.copytree(TINY / "mutants_greet", assignment, ignore=shutil.ignore_patterns("__pycache__"))
    submission.parent.mkdir()
    shutil.copy(TINY / "reference" / "greet.py", submission)
    (assignment / "conftest.py").write_text(RECORDER, encoding="utf-8")
    checks = assignment / "test_greet.py"
    checks.write_text(checks.read_text(encoding="utf-8") + CHECK, encoding="utf-8")
    done = subprocess.run(grader_command("check", str(assignment), str(submission), "--check-workers", workers),
                          capture_output=True, text=True, env=grader_env, timeout=300)
    assert done.returncode == 0 and "all checks passed" in done.stdout, done.stdout + done.stderr
    recorded = [json.loads(path.read_text(encoding="utf-8")) for path in assignment.glob("plugins-*.json")]
    # the pytest process, and each check worker
    assert len(recorded) == (1 if workers == "1" else 3), recorded
    for names in recorded:
        assert "unraisableexception" not in names, names
        assert {"tmpdir", "monkeypatch", "capture", "logging", "recwarn", "grader.plugin", "pytest_timeout"} <= set(names), names
