"""The pytest plugin end to end, with pytester in a subprocess (a hang must not take us down)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

CONFIG = """
[assignment]
title = "Tiny"
summary = "a tiny assignment for plugin tests"
module = "tiny.py"
timeout = {timeout}

[checks.test_configured]
points = 5
visibility = "hidden"
"""

CHECKS = '''
import pytest
from grader.checks import fail


@pytest.mark.points(2)
def test_adds(submission):
    """add(2, 3) returns 5."""
    run = submission.call("add", 2, 3)
    if run.value != 5:
        fail(f"add(2, 3) returned {run.value!r}", "5", "use +")


@pytest.mark.points(3)
@pytest.mark.visibility("after_due_date")
def test_prints(submission):
    """shout() prints HI."""
    run = submission.call("shout")
    assert run.stdout_lines() == ["HI"], run.stdout_lines()


def test_configured(submission):
    """points and visibility come from the config."""
    submission.call("add", 1, 1)
'''


def make_assignment(pytester: pytest.Pytester, source: str, timeout: int = 20) -> Path:
    folder = pytester.mkdir("tiny")
    (folder / "assignment.toml").write_text(CONFIG.format(timeout=timeout))
    (folder / "test_tiny.py").write_text(CHECKS)
    student = pytester.mkdir("student")
    (student / "tiny.py").write_text(textwrap.dedent(source))
    return folder


def results(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict]:
    out = pytester.path / "results.json"
    run = pytester.runpytest_subprocess("tiny", "--submission", "student", f"--grader-results={out}", *args)
    return run, json.loads(out.read_text())


def test_correct_submission_gets_full_marks(pytester: pytest.Pytester) -> None:
    make_assignment(pytester, "def add(a, b):\n    return a + b\n\ndef shout():\n    print('HI')\n")
    run, data = results(pytester)
    run.assert_outcomes(passed=3)
    assert data["score"] == data["max_score"] == 10
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["test_configured"]["max_points"] == 5
    assert checks["test_configured"]["visibility"] == "hidden"
    assert checks["test_prints"]["visibility"] == "after_due_date"
    assert checks["test_adds"]["name"] == "add(2, 3) returns 5."
    assert "grade: 10/10" in run.stdout.str()


def test_wrong_answer_loses_points_with_message(pytester: pytest.Pytester) -> None:
    make_assignment(pytester, "def add(a, b):\n    return a - b\n\ndef shout():\n    print('hi')\n")
    run, data = results(pytester)
    run.assert_outcomes(passed=1, failed=2)
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["test_adds"]["status"] == "failed"
    assert checks["test_adds"]["message"].startswith("Observed: add(2, 3) returned -1\nExpected: 5\nHint: use +")
    assert checks["test_prints"]["points"] == 0
    assert "hi" in checks["test_prints"]["output"]
    assert data["score"] == 5


def test_syntax_error_fails_every_check_with_the_line(pytester: pytest.Pytester) -> None:
    make_assignment(pytester, "def add(a, b)\n    return a + b\n")
    _, data = results(pytester)
    for check in data["checks"]:
        assert check["status"] == "failed"
        assert "SyntaxError" in check["message"] and "line 1" in check["message"], check["message"]


def test_missing_function_is_named(pytester: pytest.Pytester) -> None:
    make_assignment(pytester, "def add(a, b):\n    return a + b\n")
    _, data = results(pytester)
    prints = next(c for c in data["checks"] if c["id"] == "test_prints")
    assert "tiny.py does not define a function named shout" in prints["message"]


def test_hang_is_timed_out_and_leaves_nothing_running(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    sandboxes = pytester.mkdir("sandboxes")
    monkeypatch.setenv("TMPDIR", str(sandboxes))
    make_assignment(
        pytester,
        """
        import multiprocessing, time

        def spin():
            while True:
                time.sleep(0.1)

        def add(a, b):
            p = multiprocessing.Process(target=spin)
            p.start()
            p.join()

        def shout():
            print('HI')
        """,
        timeout=6,
    )
    run, data = results(pytester)
    adds = next(c for c in data["checks"] if c["id"] == "test_adds")
    assert adds["status"] == "timed_out"
    assert "did not finish within 3 seconds" in adds["message"]
    assert "tiny.py, line" in adds["diagnostics"]
    import psutil

    leftovers = []
    for proc in psutil.process_iter():
        try:
            if str(sandboxes) in proc.environ().get("GRADER_SANDBOX_OUT", ""):
                leftovers.append(proc)
        except psutil.Error:
            continue
    assert not leftovers


def test_checks_require_a_submission(pytester: pytest.Pytester) -> None:
    make_assignment(pytester, "def add(a, b):\n    return a + b\n")
    run = pytester.runpytest_subprocess("tiny")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "--submission PATH is required" in run.stderr.str()


def test_bad_config_is_reported_with_its_source(pytester: pytest.Pytester) -> None:
    folder = make_assignment(pytester, "def add(a, b):\n    return a + b\n")
    (folder / "assignment.toml").write_text('[assignment]\nmodule = "tiny.py"\ntimeout = "soon"\n')
    run = pytester.runpytest_subprocess("tiny", "--submission", "student")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "assignment.toml: 'timeout' must be a positive number of seconds, got 'soon'" in run.stderr.str()


def test_plugin_is_inert_outside_assignments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


MISSPELT_PROBE = '''
import pytest
from grader.checks import fail


@pytest.mark.points(2)
def test_adds(submission):
    """add(2, 3) returns 5."""
    run = submission.call("add", 2, 3, probes=["lock"])
    if run.value != 5:
        fail(f"add(2, 3) returned {run.value!r}", "5", "use +")
'''


def test_unknown_probe_is_the_assignments_error_not_the_students(pytester: pytest.Pytester) -> None:
    folder = make_assignment(pytester, "def add(a, b):\n    return a + b\n")
    (folder / "test_tiny.py").write_text(MISSPELT_PROBE)
    _, data = results(pytester)
    assert data["error"].startswith("the assignment is broken")
    assert "assignment error: test_tiny.py:9: the check asks for the probe 'lock', which does not exist" in data["error_detail"]
    assert "known probes: close_cycles, futures, late_wakeups, locks, " in data["error_detail"]
    [check] = data["checks"]
    assert check["status"] == "error" and check["points"] == 0
    assert check["message"].startswith("The assignment's checks are broken, not your code")
    assert "'lock'" in check["message"] and "sys.exit" not in check["message"]
    assert check["output"] == ""  # refused before any sandbox started
