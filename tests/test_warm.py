"""grader.grading.warm: pytest processes forked from one warm process grade exactly like cold ones."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from grader.grading.grade import grade_submission, pytest_environment, warm_grading
from grader.grading.warm import WarmPytest, warm_supported
from grader.model.assignment import find_assignment

pytestmark = pytest.mark.skipif(not warm_supported(), reason="a warm process needs Linux (fork and pidfd_open)")

ROOT = Path(__file__).resolve().parent.parent


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture
def warm(tmp_path: Path) -> WarmPytest:
    server = WarmPytest(pytest_environment(), cwd=str(tmp_path))
    yield server
    server.close()


def write_tests(folder: Path, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_it.py").write_text(body, encoding="utf-8")
    return folder


def test_a_fork_runs_pytest_with_its_own_folder_log_and_exit_status(warm: WarmPytest, tmp_path: Path) -> None:
    passing = write_tests(tmp_path / "a", "import os\ndef test_cwd():\n    print('cwd', os.getcwd())\n    assert True\n")
    failing = write_tests(tmp_path / "b", "def test_no():\n    assert 1 == 2, 'one is not two'\n")
    started: list[int] = []
    code = warm.run(["-p", "no:cacheprovider", "-s", str(passing)], cwd=str(passing), log=str(tmp_path / "a.log"),
                    timeout=60, on_start=started.append)
    assert code == 0
    assert started and started[0] != os.getpid()
    log = (tmp_path / "a.log").read_text()
    assert f"cwd {passing}" in log and "1 passed" in log
    code = warm.run(["-p", "no:cacheprovider", str(failing)], cwd=str(failing), log=str(tmp_path / "b.log"), timeout=60)
    assert code == 1
    assert "one is not two" in (tmp_path / "b.log").read_text()
    assert warm.run(["--no-such-option"], cwd=str(tmp_path), log=str(tmp_path / "c.log"), timeout=60) == 4


def test_nothing_of_one_fork_reaches_the_next(warm: WarmPytest, tmp_path: Path) -> None:
    first = write_tests(
        tmp_path / "first",
        "import os, sys\ndef test_leave_traces():\n    sys.modules['left_by_first'] = sys\n"
        "    os.environ['LEFT_BY_FIRST'] = '1'\n",
    )
    second = write_tests(
        tmp_path / "second",
        "import os, sys\ndef test_clean():\n    assert 'left_by_first' not in sys.modules\n"
        "    assert 'LEFT_BY_FIRST' not in os.environ\n"
        "    assert not any('test_it' in m for m in sys.modules if m != __name__)\n",
    )
    args = ["-p", "no:cacheprovider", "--import-mode=importlib"]
    assert warm.run([*args, str(first)], cwd=str(first), log=str(tmp_path / "1.log"), timeout=60) == 0
    assert warm.run([*args, str(second)], cwd=str(second), log=str(tmp_path / "2.log"), timeout=60) == 0, (
        (tmp_path / "2.log").read_text()
    )


def test_a_fork_past_its_time_limit_is_killed(warm: WarmPytest, tmp_path: Path) -> None:
    slow = write_tests(tmp_path / "slow", "import time\ndef test_sleep():\n    time.sleep(120)\n")
    started: list[int] = []
    code = warm.run(["-p", "no:cacheprovider", str(slow)], cwd=str(slow), log=str(tmp_path / "s.log"), timeout=2,
                    on_start=started.append)
    assert code is None
    assert not alive(started[0])


def test_closing_ends_the_warm_process(tmp_path: Path) -> None:
    server = WarmPytest(pytest_environment(), cwd=str(tmp_path))
    pid = server._proc.pid
    assert server.run(["--version"], cwd=str(tmp_path), log=str(tmp_path / "v.log"), timeout=60) == 0
    server.close()
    assert server._proc.returncode == 0
    assert not alive(pid)


@pytest.mark.parametrize("entry", ["reference", "buggy/no_join.py", "buggy/crash.py"])
def test_warm_grading_gives_the_cold_grade(entry: str) -> None:
    assignment = find_assignment("hello_processes")
    path = ROOT / "reference" / "hello_processes.py" if entry == "reference" else (
        ROOT / "tests" / "corpus" / "hello_processes" / entry
    )
    warm = warm_grading()
    assert warm is not None
    try:
        hot = grade_submission(assignment, path, student="s", warm=warm)
    finally:
        warm.close()
    cold = grade_submission(assignment, path, student="s")
    assert hot.error is None and cold.error is None
    assert [(c.id, c.status, c.points) for c in hot.checks] == [(c.id, c.status, c.points) for c in cold.checks]


def test_a_dead_warm_process_means_grading_cold(tmp_path: Path) -> None:
    warm = warm_grading()
    assert warm is not None
    os.kill(warm._proc.pid, signal.SIGKILL)
    warm._proc.wait()
    warm._reader.join(10)
    try:
        result = grade_submission(find_assignment("hello_processes"), ROOT / "reference" / "hello_processes.py", warm=warm)
    finally:
        warm.close()
    assert result.error is None
    assert result.score == result.max_score
