"""A grading's overall budget adds up from its checks' limits, and when it runs out everything of it ends at once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import FORKING_GRADER

from grader.grading.grade import PYTEST_MARGIN, START_ALLOWANCE, Budget, grade_submission
from grader.model.assignment import find_assignment
from grader.plugin import CHECK_OVERHEAD

CORPUS = Path(__file__).resolve().parent / "corpus"
HANGS = CORPUS / "hello_processes" / "buggy" / "hangs.py"


def test_the_budget_grows_to_the_sum_of_the_collected_checks(tmp_path: Path) -> None:
    report = tmp_path / "budget.json"
    budget = Budget(report)
    assert START_ALLOWANCE - 1 < budget.remaining() <= START_ALLOWANCE
    report.write_text(json.dumps({"checks": 9, "seconds": 400}))
    assert 400 + PYTEST_MARGIN - 1 < budget.remaining() <= 400 + PYTEST_MARGIN
    assert "the checks' time limits" in budget.describe()
    fixed = Budget(tmp_path / "never-written.json", 5)
    assert 4 < fixed.remaining() <= 5 and fixed.describe() == "5 s"


def test_the_plugin_reports_every_check_limit(tmp_path: Path) -> None:
    """locked_counter: one check with a 3 x run-limit marker, the others the assignment's 25 s."""
    from grader.grading.grade import pytest_command, pytest_environment

    assignment = find_assignment("locked_counter")
    report = tmp_path / "budget.json"
    command = pytest_command(assignment, CORPUS.parent.parent / "reference" / "locked_counter.py", tmp_path / "r.json",
                             budget=report)
    subprocess.run([*command, "--collect-only"], env=pytest_environment(), cwd=tmp_path, capture_output=True, check=False)
    data = json.loads(report.read_text())
    limits = [25.0] * (data["checks"] - 1) + [3 * 20 + 10]  # RUN_TIMEOUT = 20 in its check file
    assert data["seconds"] == pytest.approx(sum(limits) + data["checks"] * CHECK_OVERHEAD)


class _Watch(threading.Thread):
    """Records the sandbox folders that appear in ``folder`` while a grading runs."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True)
        self.folder, self.seen, self.stop = folder, set(), threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.seen.update(p.name for p in self.folder.glob("grader-sandbox-*"))


IN_A_FORK = FORKING_GRADER + """
result = grade.grade_submission(find_assignment("hello_processes"), sys.argv[1], timeout=12)
print(json.dumps({"forked": forks, "error": result.error}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("pytest_process", ["new interpreter", "fork of the grader"])
def test_a_grading_past_its_budget_ends_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytest_process: str, grader_env: dict[str, str]
) -> None:
    """Its pytest process a new interpreter (this process runs other threads) or a fork of a one-thread grader."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    watch = _Watch(tmp)
    watch.start()
    started = time.monotonic()
    if pytest_process == "new interpreter":
        error = grade_submission(find_assignment("hello_processes"), HANGS, timeout=12).error
    else:
        done = subprocess.run([sys.executable, "-c", IN_A_FORK, str(HANGS)], capture_output=True, text=True,
                              timeout=120, env={**grader_env, "TMPDIR": str(tmp)})
        assert done.returncode == 0, done.stderr
        seen = json.loads(done.stdout)
        assert len(seen["forked"]) == 1 and seen["forked"][0] is not None
        error = seen["error"]
    took = time.monotonic() - started
    watch.stop.set()
    watch.join()
    assert error and "within the grading's budget of 12 s" in error, error
    assert took < 12 + 15 + 10, f"the grading took {took:.0f} s past a 12 s budget"
    assert watch.seen, "no sandbox ran: the test proves nothing"
    mounts = Path("/proc/mounts").read_text()
    assert str(tmp) not in mounts, "a sandbox's tmpfs is still mounted"
    cgroups = {p.name for p in Path("/sys/fs/cgroup").glob("*/*") if p.name.startswith("grader-sandbox-")}
    assert not (watch.seen & cgroups), f"cgroups left: {watch.seen & cgroups}"
    assert not list(tmp.glob("grader-*")), f"folders left: {sorted(p.name for p in tmp.iterdir())}"
    running = []
    for proc in psutil.process_iter(["cwd", "cmdline"]):
        text = f"{proc.info.get('cwd') or ''} {' '.join(proc.info.get('cmdline') or [])}"
        if str(tmp) in text:
            running.append(proc.pid)
    assert not running, f"processes of the grading still run: {running}"


def test_a_grading_that_ends_before_its_last_check_is_not_graded(tmp_path: Path) -> None:
    """pytest interrupted after 1 of 3 checks (a stray SIGTERM): the passing one is no full marks, it is an error."""
    from grader.model.assignment import Assignment

    folder = tmp_path / "two_halves"
    folder.mkdir()
    (folder / "assignment.toml").write_text('[assignment]\ntitle = "Two halves"\nmodule = "halves.py"\ntimeout = 10\n')
    (folder / "test_halves.py").write_text(
        "import os\nimport signal\n\n\n"
        "def test_first(submission):\n    assert submission.call('half', 4, timeout=8).value == 2\n\n\n"
        "def test_interrupted(submission):\n    os.kill(os.getpid(), signal.SIGTERM)\n\n\n"
        "def test_never_run(submission):\n    assert submission.call('half', 6, timeout=8).value == 3\n"
    )
    solution = tmp_path / "halves.py"
    solution.write_text("def half(n):\n    return n // 2\n")
    result = grade_submission(Assignment.load(folder), solution)
    assert not result.graded and not result.full_marks, result.to_dict()
    assert result.error == (
        "the grader could not run the checks: pytest ended with exit code 2 after 1 of the 3 checks; a grade needs "
        "every check's result (the pytest log shows where it stopped; grade the submission again)"
    )
    assert "KeyboardInterrupt" in result.error_detail, result.error_detail  # the log of pytest, for the instructor
