"""The plugin reports the instructor's mistakes met while grading as assignment errors (pytester, in a subprocess)."""

from __future__ import annotations

import pytest
from test_plugin import make_assignment, results

CORRECT = "def add(a, b):\n    return a + b\n\ndef shout():\n    print('HI')\n"
INTERNALS = ("_pytest/", "Traceback (most recent call last)", "pluggy/")


def broken_checks(pytester: pytest.Pytester, checks: str, drivers: str | None = None) -> None:
    folder = make_assignment(pytester, CORRECT)
    (folder / "test_tiny.py").write_text(checks)
    if drivers is not None:
        (folder / "drivers.py").write_text(drivers)
        config = folder / "assignment.toml"
        config.write_text(config.read_text().replace('module = "tiny.py"', 'module = "tiny.py"\ndrivers = "drivers.py"'))


def test_a_check_file_that_fails_to_import_is_one_block(pytester: pytest.Pytester) -> None:
    broken_checks(pytester, "import pytest\n\nLIMIT = undefined_limit * 2\n\n\ndef test_adds(submission):\n    pass\n")
    run, data = results(pytester)
    assert data["error"].startswith("the assignment is broken")
    assert data["metadata"]["assignment_errors"] == [
        "assignment error: test_tiny.py:3: NameError: name 'undefined_limit' is not defined\n    3 | LIMIT = undefined_limit * 2"
    ]
    assert data["checks"] == []
    output = run.stdout.str() + run.stderr.str()
    assert "assignment error: test_tiny.py:3: NameError" in output
    for internal in INTERNALS:
        assert internal not in output


def test_an_import_error_in_a_check_file(pytester: pytest.Pytester) -> None:
    broken_checks(pytester, "import pytest\nfrom grader.checks import expekt\n\n\ndef test_adds(submission):\n    pass\n")
    _, data = results(pytester)
    [block] = data["metadata"]["assignment_errors"]
    assert block.startswith("assignment error: test_tiny.py:2: ImportError: cannot import name 'expekt' from 'grader.checks'")


BUGGY_CHECK = '''
import pytest
from grader.checks import expect


@pytest.mark.points(2)
def test_adds(submission):
    """add(2, 3) returns 5."""
    run = submission.call("add", 2, 3)
    expect(run.value == 5, observed=f"add(2, 3) returned {run.vaule!r}", expected="5")


def test_shouts(submission):
    """shout() prints HI."""
    run = submission.call("shout")
    assert run.stdout_lines() == ["HI"]
'''


def test_a_bug_in_a_checks_own_code_is_the_assignments_error(pytester: pytest.Pytester) -> None:
    broken_checks(pytester, BUGGY_CHECK)
    _, data = results(pytester)
    assert data["error"].startswith("the assignment is broken")
    [block] = data["metadata"]["assignment_errors"]
    assert block.startswith("assignment error: test_tiny.py:10: AttributeError: 'Run' object has no attribute 'vaule'")
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["test_adds"]["status"] == "error" and checks["test_adds"]["points"] == 0
    assert checks["test_adds"]["message"].startswith("The assignment's checks are broken, not your code")
    assert "internal error" not in checks["test_adds"]["message"]
    assert checks["test_shouts"]["status"] == "passed"


DRIVER_CHECK = '''
import pytest


def test_adds(submission):
    """add(2, 3) returns 5."""
    run = submission.drive("add_twise", 2, 3)
    assert run.value == 10
'''


def test_a_driver_that_drivers_py_does_not_define(pytester: pytest.Pytester) -> None:
    drivers = "def add_twice(student, a, b):\n    return student.add(a, b) * 2\n\n\ndef _helper():\n    pass\n"
    broken_checks(pytester, DRIVER_CHECK, drivers)
    _, data = results(pytester)
    assert data["metadata"]["assignment_errors"] == [
        "assignment error: test_tiny.py:7: drivers.py has no driver named 'add_twise' (did you mean 'add_twice'?); "
        "known drivers: add_twice\n    7 | run = submission.drive(\"add_twise\", 2, 3)"
    ]
    [check] = data["checks"]
    assert check["status"] == "error" and "does not define" not in check["message"]
    assert check["output"] == ""  # refused before any sandbox started


def test_a_drivers_py_that_fails_to_import_in_the_sandbox(pytester: pytest.Pytester) -> None:
    drivers = "import os\nSTEP = os.environ['NO_SUCH_VARIABLE']\n\n\ndef add_twise(student, a, b):\n    return 0\n"
    broken_checks(pytester, DRIVER_CHECK, drivers)
    _, data = results(pytester)
    [block] = data["metadata"]["assignment_errors"]
    assert block.startswith("assignment error: drivers.py:2: drivers.py failed to import in the sandbox: KeyError: ")


def test_the_students_missing_function_is_still_the_students(pytester: pytest.Pytester) -> None:
    folder = make_assignment(pytester, "def shout():\n    print('HI')\n")
    assert folder.is_dir()
    _, data = results(pytester)
    assert data["error"] is None and "assignment_errors" not in data["metadata"]
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["test_adds"]["status"] == "failed"
    assert "tiny.py does not define a function named add" in checks["test_adds"]["message"]
