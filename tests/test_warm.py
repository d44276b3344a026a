"""grader.grading.warm: pytest processes forked from one warm process grade exactly like cold ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FORKING_GRADER

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


PREBUILT_TESTS = """
import os
from pathlib import Path

from _pytest import config as pytest_config

from grader import pytest_process


def test_config(request):
    config = request.config
    with open(os.environ["RECORD"], "a", encoding="utf-8") as out:
        mark = pytest_process.PREBUILT_MARK
        out.write(repr((mark is not None and config.stash.get(mark, False), getattr(config, "left_here", None),
                        config.invocation_params.args, str(config.invocation_params.dir),
                        config.pluginmanager.is_blocked("cacheprovider"), config.pluginmanager.hasplugin("pytest_timeout"),
                        pytest_config.get_config.__module__)) + "\\n")
    config.left_here = os.getpid()
"""


def test_each_fork_gets_its_own_copy_of_the_prebuilt_configuration(tmp_path: Path) -> None:
    folder = write_tests(tmp_path / "checks", PREBUILT_TESTS)
    record = tmp_path / "record.txt"
    server = WarmPytest({**pytest_environment(), "RECORD": str(record)}, cwd=str(tmp_path))
    try:
        graded = ["-p", "pytest_timeout", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-q", str(folder)]
        other_blocked = ["-p", "pytest_timeout", "-p", "no:cacheprovider", "-q", str(folder)]
        other_named = ["-p", "no:cacheprovider", "-p", "no:unraisableexception", "-q", str(folder)]
        for n, args in enumerate([graded, graded, graded, other_blocked, other_named, other_blocked]):
            assert server.run(args, cwd=str(folder), log=str(tmp_path / f"{n}.log"), timeout=60) == 0, (
                (tmp_path / f"{n}.log").read_text()
            )
    finally:
        server.close()
    first, second, third, fourth, fifth, sixth = (eval(line) for line in record.read_text().splitlines())  # noqa: S307
    # the first fork builds its own; the warm process then builds one from that grading's arguments
    assert first == (False, None, tuple(graded), str(folder), True, True, "_pytest.config")
    # the next gradings: the configuration the warm process built, with the plugin named, its arguments and folder
    # the fork's own, nothing a fork before it set on it (a copy of its own), pytest's get_config given back after use
    for seen in (second, third):
        assert seen == (True, None, tuple(graded), str(folder), True, True, "_pytest.config")
    # other plugins blocked or named: the first fork with them builds its own, as it always did
    assert fourth == (False, None, tuple(other_blocked), str(folder), True, True, "_pytest.config")
    assert fifth == (False, None, tuple(other_named), str(folder), True, False, "_pytest.config")
    # and the warm process builds one for them too (a batch's last gradings name pytest-xdist's plugin)
    assert sixth == (True, None, tuple(other_blocked), str(folder), True, True, "_pytest.config")


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


@pytest.mark.parametrize("entry", ["reference", "buggy/no_join.py", "buggy/child_crashes.py"])
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
    assert hot.error is None and cold.error is None and hot.checks
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


FORK_OF_THIS_PROCESS = """
import atexit, json, os, sys, tempfile
from pathlib import Path
from grader.grading.warm import fork_pytest

out = Path(sys.argv[1])
kept = tempfile.TemporaryDirectory(dir=out)  # removed by this process's exit handlers only
atexit.register(lambda: (out / "exit-handler-ran").write_text(str(os.getpid())))
held = os.open(out / "held.txt", os.O_WRONLY | os.O_CREAT, 0o600)  # a lock file, say
print("buffered, not yet written", end="")  # flushed by this process once, never by the fork
tests = out / "tests"
tests.mkdir()
(tests / "test_it.py").write_text(
    "import os, sys, tempfile\\n"
    "OWN = tempfile.TemporaryDirectory()  # the fork's own: removed at its exit, and only it\\n"
    "def test_fresh():\\n"
    f"    assert os.environ.get('ONLY_IN_THE_FORK') == '1' and 'ONLY_HERE' not in os.environ\\n"
    "    links = [os.path.realpath(f'/proc/self/fd/{n}') for n in os.listdir('/proc/self/fd') if n.isdigit()]\\n"
    f"    assert {str(out / 'held.txt')!r} not in links, links\\n"
    f"    assert sys.dont_write_bytecode and os.getcwd() == {str(tests)!r}\\n"
)
os.environ["ONLY_HERE"] = "1"
env = {k: v for k, v in os.environ.items() if k != "ONLY_HERE"}
env.update(ONLY_IN_THE_FORK="1", PYTHONDONTWRITEBYTECODE="1")
pid = fork_pytest(["-p", "no:cacheprovider", str(tests)], cwd=str(tests), log=str(out / "fork.log"), env=env)
assert pid is not None and pid != os.getpid()
_, status = os.waitpid(pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "kept": Path(kept.name).is_dir(),
                  "handler_ran": (out / "exit-handler-ran").exists(), "pid": os.getpid()}))
"""


def test_a_fork_of_the_grader_is_pytest_as_a_new_interpreter_would_be(tmp_path: Path) -> None:
    """No file descriptor, exit handler, environment variable or buffered output of the grader reaches the fork."""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FORK_OF_THIS_PROCESS, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=buffered)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("buffered, not yet written{")
    seen = json.loads(done.stdout.removeprefix("buffered, not yet written"))
    log = (tmp_path / "fork.log").read_text()
    assert seen == {"exit": 0, "kept": True, "handler_ran": False, "pid": seen["pid"]}, log
    assert "1 passed" in log and "buffered" not in log
    assert (tmp_path / "exit-handler-ran").read_text() == str(seen["pid"])  # at the grader's exit, by the grader


NO_FORK = """
import io, os, sys, threading
from grader.grading.warm import fork_pytest
release = threading.Event()
if sys.argv[2] == "thread":  # a lock it holds would stay held in the fork
    threading.Thread(target=release.wait).start()
else:  # a test run's capture, say: the fork would write its pytest's output into it
    sys.stdout = io.StringIO()
pid = fork_pytest(["--version"], cwd=sys.argv[1], log=sys.argv[1] + "/v.log", env=os.environ)
release.set()
print(pid, file=sys.__stdout__)
"""


@pytest.mark.parametrize("while_", ["thread", "captured output"])
def test_no_fork_of_the_grader_while_another_thread_runs_or_its_output_is_captured(tmp_path: Path, while_: str) -> None:
    done = subprocess.run([sys.executable, "-c", NO_FORK, str(tmp_path), while_], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (done.returncode, done.stdout) == (0, "None\n"), done.stderr
    assert not (tmp_path / "v.log").exists()  # nothing ran


GRADE_BOTH_WAYS = FORKING_GRADER + """
assignment = find_assignment("hello_processes")
hot = grade.grade_submission(assignment, sys.argv[1], student="s")
grade.fork_pytest = lambda *a, **k: None
cold = grade.grade_submission(assignment, sys.argv[1], student="s")
print(json.dumps({"forked": forks, "errors": [hot.error, cold.error],
                  "hot": [[c.id, c.status, c.points] for c in hot.checks],
                  "cold": [[c.id, c.status, c.points] for c in cold.checks]}))
"""


@pytest.mark.parametrize("entry", ["buggy/no_join.py", "buggy/child_crashes.py"])
def test_a_grading_in_a_fork_of_the_grader_gives_the_grade_of_a_new_interpreter(entry: str, grader_env: dict[str, str]) -> None:
    path = ROOT / "tests" / "corpus" / "hello_processes" / entry
    done = subprocess.run([sys.executable, "-c", GRADE_BOTH_WAYS, str(path)], capture_output=True, text=True,
                          timeout=300, env=grader_env)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert len(seen["forked"]) == 1 and seen["forked"][0] is not None  # the first grading ran in a fork
    assert seen["errors"] == [None, None]
    assert seen["hot"] == seen["cold"] and seen["hot"]
