"""``python -m grader.pytest_process``: pytest whose first check workers are forks of it (grader/pytest_process.py).

Each test runs the module as a grading does, on a small test folder of its own, and looks at
what its check workers were: their command line (a fork keeps this process's; a new
interpreter has execnet's ``-c`` bootstrap) and their parent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.processes import pidfd_of
from grader.pytest_process import _Child, worker_count

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/cmdline").exists(), reason="needs fork and /proc")

BOOTSTRAP = "exec(eval(sys.stdin.readline()))"
"""What execnet's ``popen`` gateway runs in a new interpreter (``python -u -c ...``)."""

RECORDING_TESTS = '''
import os
from pathlib import Path


def record(name):
    cmdline = Path("/proc/self/cmdline").read_bytes().replace(b"\\0", b" ").decode()
    with open(os.environ["RECORD"], "a", encoding="utf-8") as out:
        out.write(f"{name}|{os.getpid()}|{os.getppid()}|{cmdline}\\n")


def test_one():
    record("one")


def test_two():
    record("two")


def test_three():
    record("three")


def test_four():
    record("four")
'''


def _run(folder: Path, module: str, *args: str, timeout: float = 120) -> tuple[subprocess.Popen[bytes], str]:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "RECORD": str(folder / "record.txt")}
    # The output goes to a file, not a pipe: the wait ends when the pytest process does, whatever its children do.
    with open(folder / "output.txt", "wb") as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(folder), "-c", os.devnull, f"--rootdir={folder}", "-p", "no:cacheprovider",
             "-q", "-p", "xdist.plugin", *args],
            cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
        )
        proc.wait(timeout=timeout)
    return proc, (folder / "output.txt").read_text(encoding="utf-8", errors="replace")


def _records(folder: Path) -> list[list[str]]:
    return [line.split("|", 3) for line in (folder / "record.txt").read_text(encoding="utf-8").splitlines()]


def _processes_naming(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-n", "2"], 2),
        (["-q", "-n3", "-x"], 3),
        (["--numprocesses", "4"], 4),
        (["-n", "auto"], 0),
        (["-q", "--no-header"], 0),
        ([], 0),
    ],
)
def test_worker_count_reads_the_check_workers_asked_for(args: list[str], expected: int) -> None:
    assert worker_count(args) == expected


def test_check_workers_are_forks_of_the_pytest_process(tmp_path: Path) -> None:
    (tmp_path / "test_recording.py").write_text(RECORDING_TESTS, encoding="utf-8")
    proc, output = _run(tmp_path, "grader.pytest_process", "-n", "2")
    assert proc.returncode == 0, output
    assert "4 passed" in output
    records = _records(tmp_path)
    assert sorted(name for name, *_ in records) == ["four", "one", "three", "two"]
    workers = {pid for _, pid, _, _ in records}
    assert len(workers) == 2, f"expected the checks to run in 2 check workers, saw pids {workers}"
    for name, pid, parent, cmdline in records:
        assert int(parent) == proc.pid, f"check {name} ran in {pid}, a child of {parent}, not of pytest ({proc.pid})"
        assert "grader.pytest_process" in cmdline and BOOTSTRAP not in cmdline, (
            f"check {name} ran in a new interpreter ({cmdline!r}), not in a fork of the pytest process"
        )


WORKER_CONFIG_TESTS = """
import os
import sys

from _pytest import config as pytest_config


def check(request, name):
    config = request.config
    mark = sys.modules["__main__"].PREBUILT_MARK  # python -m grader.pytest_process: its globals are __main__'s
    with open(os.environ["RECORD"], "a", encoding="utf-8") as out:
        out.write(repr((name, os.getpid(), mark is not None and config.stash.get(mark, False),
                        getattr(config, "left_here", None), config.invocation_params.args,
                        config.pluginmanager.is_blocked("cacheprovider"), config.pluginmanager.hasplugin("xdist.plugin"),
                        pytest_config.get_config.__module__, hasattr(config, "workerinput"))) + "\\n")
    config.left_here = os.getpid()


def test_one(request):
    check(request, "one")


def test_two(request):
    check(request, "two")


def test_three(request):
    check(request, "three")


def test_four(request):
    check(request, "four")
"""


def test_check_workers_take_the_configuration_built_for_them_once(tmp_path: Path) -> None:
    """The pytest process builds pytest's configuration object for its check workers once, before it forks them.

    Each worker uses its own copy (nothing one sets reaches another), with the grading's arguments and
    plugins, as the configuration xdist would have built in it; pytest's ``get_config`` is given back after.
    """
    (tmp_path / "test_config.py").write_text(WORKER_CONFIG_TESTS, encoding="utf-8")
    proc, output = _run(tmp_path, "grader.pytest_process", "-n", "2")
    assert proc.returncode == 0, output
    records = [eval(line) for line in (tmp_path / "record.txt").read_text().splitlines()]  # noqa: S307 - our repr
    assert sorted(name for name, *_ in records) == ["four", "one", "three", "two"]
    assert len({pid for _, pid, *_ in records}) == 2
    args = records[0][4]
    assert "-n" in args and str(tmp_path) in args
    for _name, pid, prebuilt, left, seen_args, blocked, xdist, get_config, worker in records:
        assert prebuilt and worker and blocked and xdist and seen_args == args
        assert left in (None, pid), "a configuration another worker had used"
        assert get_config == "_pytest.config"


WRAPPED_FIXTURE_CONFTEST = """
import functools
import os

import pytest
from _pytest import fixtures

checked = []
original = fixtures.FixtureManager._check_for_wrapped_fixture


def spy(self, name, obj):
    checked.append(name)
    return original(self, name, obj)


fixtures.FixtureManager._check_for_wrapped_fixture = spy


def pytest_sessionfinish(session):
    with open(os.environ["RECORD"], "w", encoding="utf-8") as out:
        out.write(repr(sorted(set(checked))))


def decorated(function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        return function(*args, **kwargs)
    return wrapper


@decorated
@pytest.fixture
def hidden():
    return 1
"""


@pytest.mark.skipif(
    not hasattr(__import__("_pytest.fixtures").fixtures.FixtureManager, "_check_for_wrapped_fixture"),
    reason="a pytest without the check for wrapped fixtures (before 9)",
)
def test_the_check_for_wrapped_fixtures_skips_only_the_graders_own_plugins(tmp_path: Path) -> None:
    """pytest's check for a fixture hidden behind a decorator still runs, and warns, for an author's conftest; the
    plugins of pytest, xdist and the grader are not looked through for it."""
    (tmp_path / "conftest.py").write_text(WRAPPED_FIXTURE_CONFTEST, encoding="utf-8")
    (tmp_path / "test_it.py").write_text("def test_one():\n    pass\n", encoding="utf-8")
    proc, output = _run(tmp_path, "grader.pytest_process")
    assert proc.returncode == 0, output
    assert "cannot discover fixture 'hidden'" in output
    checked = eval((tmp_path / "record.txt").read_text())  # noqa: S307 - our repr
    assert "hidden" in checked and "decorated" in checked  # the conftest's names
    assert "FixtureManager" not in checked and "TerminalReporter" not in checked  # pytest's own modules'


def test_plain_pytest_workers_are_new_interpreters(tmp_path: Path) -> None:
    """The baseline the test above tells apart: xdist's own workers run execnet's bootstrap."""
    (tmp_path / "test_recording.py").write_text(RECORDING_TESTS, encoding="utf-8")
    proc, output = _run(tmp_path, "pytest", "-n", "2")
    assert proc.returncode == 0, output
    assert all(BOOTSTRAP in cmdline for *_, cmdline in _records(tmp_path))


CRASHING_TESTS = '''
import os
import signal


def test_before():
    pass


def test_crashes():
    os.kill(os.getpid(), signal.SIGKILL)


def test_after():
    pass


def test_last():
    pass
'''


@pytest.mark.parametrize("module", ["pytest", "grader.pytest_process"])
def test_a_crashed_worker_is_a_failed_check_and_the_rest_still_run(tmp_path: Path, module: str) -> None:
    (tmp_path / "test_crashing.py").write_text(CRASHING_TESTS, encoding="utf-8")
    proc, output = _run(tmp_path, module, "-n", "2")
    assert proc.returncode == 1, output
    assert "1 failed, 3 passed" in output
    assert "crashed while running" in output and "test_crashes" in output
    assert not _processes_naming(str(tmp_path)), "a check worker outlived its pytest process"


def test_forks_no_gateway_took_end_with_the_pytest_process(tmp_path: Path) -> None:
    """``--version`` starts no check worker: the forks see their pipes close when pytest exits, and exit too."""
    (tmp_path / "test_recording.py").write_text(RECORDING_TESTS, encoding="utf-8")
    proc, output = _run(tmp_path, "grader.pytest_process", "-n", "2", "--version")
    assert proc.returncode == 0, output
    deadline = time.monotonic() + 30
    while (left := _processes_naming(str(tmp_path))) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"forked workers {left} outlived their pytest process by 30 s"
    assert not (tmp_path / "record.txt").exists()


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_a_grading_runs_this_module_and_it_reads_the_grading_s_check_workers(tmp_path: Path, workers: int) -> None:
    """The grader's command line goes through this module, in the form its ``-n`` reader understands."""
    from grader.grading.grade import pytest_command
    from grader.model.assignment import find_assignment

    command = pytest_command(find_assignment("locked_counter"), tmp_path / "s.py", tmp_path / "r.json", check_workers=workers)
    assert command[:3] == [sys.executable, "-m", "grader.pytest_process"]
    assert worker_count(command[3:]) == (workers if workers > 1 else 0)


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="pidfds are Linux 5.3+ only")
def test_a_kill_racing_with_the_reap_signals_no_other_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """``kill`` runs without ``wait``'s lock: between the reap and ``returncode`` it goes through the pidfd."""
    pid = os.fork()
    if pid == 0:
        os._exit(3)
    child = _Child(pid, pidfd_of(pid))
    assert child.pidfd is not None
    assert child.wait() == 3
    child.returncode = None  # as if kill() ran after waitpid() returned, before wait() stored the code

    def no_kill_by_pid(target: int, sig: int) -> None:
        raise AssertionError(f"os.kill({target}, {sig}): a pid can name another process once it was reaped")

    monkeypatch.setattr(os, "kill", no_kill_by_pid)
    child.kill()  # the pidfd names the reaped child only: nothing is signalled, nothing raised
    os.close(child.pidfd)
