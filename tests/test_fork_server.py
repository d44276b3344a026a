"""The sandboxes' fork server: a served sandbox is the launched one, started cheaper, and nothing of the server reaches it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader import served
from grader.inside import events, wire
from grader.sandbox import Isolation, Sandbox
from grader.sandbox import sandbox as sandbox_module
from grader.sandbox.folder import copy_support
from grader.sandbox.fork_server import PRELOAD
from grader.served import CHANNEL_ENV, base_interpreter

pytestmark = pytest.mark.skipif(not served.supported(), reason="the fork server needs Linux")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[served.Server]:
    """A fork server of this test's own; the sandboxes this process starts meanwhile are its forks."""
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    proc = served.start_server()
    assert proc is not None
    try:
        yield proc
    finally:
        served.stop_server(proc)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandboxes this process starts are launched (whatever the suite's setting)."""
    monkeypatch.delenv(CHANNEL_ENV, raising=False)


def _sandbox(tmp_path: Path, source: str, isolation: Isolation | None = None) -> Sandbox:
    folder = tmp_path / f"s{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "mod.py").write_text(textwrap.dedent(source))
    return Sandbox(folder / "mod.py", "mod", start_method="spawn", isolation=isolation or Isolation())


def _call(func: str) -> dict[str, Any]:
    return {"kind": "call", "func": func, "args": wire.encode([]), "kwargs": wire.encode({})}


def _served_runs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Records what each sandbox start of this process got from the server (``None``: it was launched)."""
    got: list[object] = []
    original = sandbox_module.launch_served

    def recorded(*args: Any) -> object:
        result = original(*args)
        got.append(result)
        return result

    monkeypatch.setattr(sandbox_module, "launch_served", recorded)
    return got


STATE = '''
import gc, json, os, signal, sys, threading

NO_HANDLER = (signal.SIGKILL, signal.SIGSTOP)


def state():
    main = sys.modules["__main__"]
    base = os.path.dirname(os.path.dirname(main.__file__))
    def rel(text):
        return str(text).replace(base, "<sandbox>")
    with open("/proc/self/status") as status:
        ids = [line.split()[1:] for line in status if line.startswith(("Uid:", "Gid:", "Groups:", "NoNewPrivs:", "Cap"))]
    ids = [["<uid>" if value == str(os.getuid()) else value for value in row] for row in ids]  # leased per run
    return json.dumps({
        "argv": [rel(a) for a in sys.argv],
        "path": [rel(p) for p in sys.path],
        "flags": list(sys.flags),
        "executable": sys.executable,
        "environ": sorted((k, rel(v)) for k, v in os.environ.items()),
        "main": [rel(main.__file__), main.__spec__, main.__package__, type(main.__loader__).__name__, main.__cached__],
        "fds": sorted(os.listdir("/proc/self/fd")),
        "signals": {str(s): str(signal.getsignal(s)) for s in signal.valid_signals() if s not in NO_HANDLER},
        "server_modules": sorted(m for m in ("launch", "fork_server") if m in sys.modules),
        "umask": os.umask(0o077),
        "cwd": rel(os.getcwd()),
        "ids": ids,
        "threads": threading.active_count(),
        "gc": gc.isenabled(),
        "stdin": [sys.stdin.encoding, sys.stdin.errors, sys.stdin.line_buffering, sys.stdin.isatty()],
        "hash": hash("concurrency"),
    })
'''


def _state(tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    unguarded = Isolation(audit_hook=False)  # the guard would refuse reading /proc/self: what is compared is the start
    raw = _sandbox(tmp_path, STATE, unguarded).run(_call("state"), timeout=30)
    assert raw.result is not None and raw.result["call"]["ok"], (raw.result, raw.stderr[-2000:])
    return json.loads(wire.decode(raw.result["call"]["value"])), raw.protections


@pytest.mark.parametrize("ignoring", [(), (signal.SIGINT, signal.SIGHUP)], ids=["handling", "ignoring"])
def test_a_served_sandbox_starts_the_students_code_as_a_launched_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: served.Server, ignoring: tuple[signal.Signals, ...]
) -> None:
    """Same interpreter state, same protections; no descriptor, module or signal handler of the server is left.

    A signal the pytest process ignores stays ignored in a launched interpreter (``execve`` keeps it), and
    in a served one too; one it handles is the default in both.
    """
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        for sig in (signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN if sig in ignoring else signal.default_int_handler)
        _compare_served_and_launched(tmp_path, monkeypatch)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def _compare_served_and_launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = _served_runs(monkeypatch)
    hot, hot_protections = _state(tmp_path)
    assert isinstance(got[-1], served.ServedProcess), "the run was not a fork of the server"
    monkeypatch.delenv(CHANNEL_ENV)
    cold, cold_protections = _state(tmp_path)
    assert got[-1] is None
    assert hot == cold
    assert hot_protections == cold_protections
    assert hot["server_modules"] == []


def _before_guard(support: Path, then: str) -> list[str]:
    """``then`` run after the boot script's steps before its guard, in a fresh ``python -S``; what it prints.

    The steps, in the boot script's order, for a run with a ``/dev/shm`` of its own (every run the server starts has a
    private file system view): ``json``, ``site``'s builtins, ``multiprocessing``'s resource tracker (told not to
    start), the support package (the guard, the probes, the runner) and what the run's probes import
    (``probes.preload``).
    """
    code = (
        "import sys, json, os, site\n"
        "from multiprocessing import resource_tracker\n"
        f"sys.path.insert(0, {str(support)!r})\n"
        "from grader_inside import guard, probes, runner, events\n"
        "del sys.path[0]\n" + textwrap.dedent(then)
    )
    env = {**served.BASE_ENVIRONMENT}
    out = subprocess.run([base_interpreter(), "-S", "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


EVERY_PROBE = {"probes": sorted(events.PROBES), "trace": ["task", "@Counter"], "module": "mod"}


def test_preload_holds_only_what_a_boot_script_loads_before_its_probes(tmp_path: Path) -> None:
    """The server's modules, loaded before any probe, are loaded before any probe in a launched sandbox too."""
    copy_support(tmp_path, {})
    then = f"probes.preload({EVERY_PROBE!r})\nprint(json.dumps(sorted(sys.modules)))\n"
    loaded = set(_before_guard(tmp_path, then))
    assert sorted(set(PRELOAD) - loaded) == []


def test_the_server_has_loaded_everything_a_first_process_loads_before_its_guard(tmp_path: Path) -> None:
    """The other way round: what the boot script's steps and ``probes.preload`` of every probe load (the support package
    aside) the server has loaded already, so that no first process imports it again. A module named in
    ``events.PROBE_IMPORTS`` but not in ``PRELOAD`` would still be imported before the guard, in every sandbox."""
    copy_support(tmp_path, {})
    then = f"probes.preload({EVERY_PROBE!r})\nprint(json.dumps(sorted(sys.modules)))\n"
    loaded = set(_before_guard(tmp_path, then))
    code = (f"import importlib, json, sys\nfor name in {PRELOAD!r}: importlib.import_module(name)\n"
            "print(json.dumps(sorted(sys.modules)))")
    server = subprocess.run([base_interpreter(), "-S", "-c", code], env={**served.BASE_ENVIRONMENT}, capture_output=True,
                            text=True, check=True)
    missing = loaded - set(json.loads(server.stdout))
    assert sorted(name for name in missing if name != "grader_inside" and not name.startswith("grader_inside.")) == []


@pytest.mark.parametrize("role", ["main", "child"])
@pytest.mark.parametrize(
    "scenario",
    [{"probes": [name], "trace": []} for name in sorted(events.PROBES)] + [{"probes": [], "trace": ["@Counter"]}],
    ids=[*sorted(events.PROBES), "watch"],
)
def test_no_process_of_a_run_imports_what_its_probes_need_under_the_guard(
    tmp_path: Path, scenario: dict[str, Any], role: str
) -> None:
    """What ``probes.install`` imports was loaded before the guard (``events.PROBE_IMPORTS`` is complete).

    In the first process, where the fork server has it loaded already. In a ``spawn`` child cloned from the zygote,
    which the first process forked once it had loaded it: nor does the child's program import anything.
    """
    support, out = tmp_path / "support", tmp_path / "out"
    support.mkdir()
    out.mkdir()
    copy_support(support, {})
    scenario = {**scenario, "module": "mod", "work_dir": str(tmp_path)}
    then = f"""
        probes.preload({scenario!r})
        if {role!r} == "child":
            from grader_inside import zygote
            zygote._preload()
        before = set(sys.modules)
        if {role!r} == "child":
            exec("import json, pkgutil, site; from multiprocessing.spawn import spawn_main")
        probes.install({scenario!r}, {str(out)!r}, {role!r})
        print(json.dumps(sorted(set(sys.modules) - before)))
    """
    assert _before_guard(support, then) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [("raise SystemExit(3)", 0), ("os._exit(4)", 4), ("os.kill(os.getpid(), signal.SIGKILL)", None)],
    ids=["exit", "_exit", "killed"],
)
def test_the_run_ends_with_the_exit_status_of_the_students_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: served.Server, body: str, status: int | None
) -> None:
    """The server tells the sandbox how its fork ended: the same status a launched run ends with."""
    source = f"import os, signal\n\ndef f():\n    {body}\n"
    hot = _sandbox(tmp_path, source).run(_call("f"), timeout=30)
    monkeypatch.delenv(CHANNEL_ENV)
    cold = _sandbox(tmp_path, source).run(_call("f"), timeout=30)
    assert (hot.exit_status, hot.timed_out) == (cold.exit_status, cold.timed_out)
    assert status is None or cold.exit_status == status


def test_a_server_that_does_not_answer_means_a_launched_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_server: None
) -> None:
    """A channel nobody serves: the run starts after the wait for an answer, launched, and runs once."""
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monkeypatch.setenv(CHANNEL_ENV, f"{mine.fileno()}:{os.fstat(mine.fileno()).st_ino}")
    monkeypatch.setattr(served, "ANSWER_WITHIN", 0.2)
    got = _served_runs(monkeypatch)
    source = "import os\n\ndef f():\n    return os.getpid()\n"
    raw = _sandbox(tmp_path, source).run(_call("f"), timeout=30)
    assert got == [None] and raw.result is not None and raw.result["call"]["ok"]
    mine.close()
    theirs.close()


def test_a_variable_naming_another_descriptor_is_not_a_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A program started by a process holding the channel inherits the variable, not the descriptor."""
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    monkeypatch.setenv(CHANNEL_ENV, f"{left.fileno()}:{os.fstat(right.fileno()).st_ino}")
    assert served.channel() is None
    monkeypatch.setenv(CHANNEL_ENV, f"{left.fileno()}:{os.fstat(left.fileno()).st_ino}")
    assert served.channel() == left.fileno()
    monkeypatch.setenv(CHANNEL_ENV, "not a number")
    assert served.channel() is None
    left.close()
    right.close()


def test_the_server_ends_once_its_channel_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    server = served.start_server()
    assert server is not None and server.proc.poll() is None
    served.stop_server(server, timeout=10)
    assert server.proc.returncode == 0
    assert CHANNEL_ENV not in os.environ


SOCKETS = """
import os

def target(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # the folder listing's own descriptor
        return ""

def f():
    return [sorted(k for k in os.environ if "SERVER" in k), [target(fd) for fd in os.listdir("/proc/self/fd")]]
"""


def _sockets(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            found.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return {link for link in found if link.startswith("socket:")}


def test_a_sandbox_the_server_started_cannot_ask_it_for_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: served.Server
) -> None:
    """The student's process holds no socket of the server's nor the channel's, and no variable names it."""
    got = _served_runs(monkeypatch)
    raw = _sandbox(tmp_path, SOCKETS, Isolation(audit_hook=False)).run(_call("f"), timeout=30)
    assert isinstance(got[-1], served.ServedProcess)
    names, links = wire.decode(raw.result["call"]["value"])
    assert names == []
    server_side = _sockets(server.proc.pid) | {os.readlink(f"/proc/self/fd/{server.channel}")}
    assert len(server_side) >= 2 and not server_side & set(links)
    monkeypatch.delenv(CHANNEL_ENV)
    cold = _sandbox(tmp_path, SOCKETS, Isolation(audit_hook=False)).run(_call("f"), timeout=30)
    cold_links = wire.decode(cold.result["call"]["value"])[1]
    assert sum(link.startswith("socket:") for link in links) == sum(link.startswith("socket:") for link in cold_links)


def test_the_warm_pytest_processes_of_a_batch_hold_the_channel(tmp_path: Path) -> None:
    """``grader grade``'s warm process starts the server; each pytest process it forks can ask it for sandboxes."""
    from grader.grading.warm import WarmPytest

    tests = tmp_path / "t"
    tests.mkdir()
    (tests / "test_channel.py").write_text(
        "from grader import served\n\ndef test_channel():\n    assert served.channel() is not None\n"
    )
    env = {k: v for k, v in os.environ.items() if k != CHANNEL_ENV}
    warm = WarmPytest(env, cwd=str(tests))
    try:
        code = warm.run(["-q", "-p", "no:cacheprovider", str(tests)], cwd=str(tests), log=str(tmp_path / "log"), timeout=60)
    finally:
        warm.close()
    assert code == 0, (tmp_path / "log").read_text()



def test_off_means_no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GRADER_SANDBOX_SERVER=off`` (docs/scale.md): no server, and every sandbox is launched."""
    monkeypatch.delenv(CHANNEL_ENV, raising=False)
    monkeypatch.setenv("GRADER_SANDBOX_SERVER", "off")
    assert served.start_server() is None
    assert CHANNEL_ENV not in os.environ and served.channel() is None


def test_a_sandbox_whose_pytest_process_died_is_ended_by_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: served.Server
) -> None:
    """The requester's socket closes with its process: the server kills that fork's whole tree, namespace included."""
    seen: dict[str, Any] = {}

    def dies(self: Sandbox, started: Any, baseline: set[int], out: Path, timeout: float, prove: bool) -> Any:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(psutil.Process(started.proc.pid).children(recursive=True)) < 2:
            time.sleep(0.05)  # the fork, its PID namespace's init and the student's process
        tree = [started.proc.pid, *(p.pid for p in psutil.Process(started.proc.pid).children(recursive=True))]
        started.proc._conn.close()  # as the pytest process's death closes it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_running(pid) for pid in tree):
            time.sleep(0.05)
        seen["tree"], seen["left"] = tree, [pid for pid in tree if _running(pid)]
        raise RuntimeError("the pytest process is gone")

    monkeypatch.setattr(Sandbox, "_watch", dies)
    with pytest.raises(RuntimeError):
        _sandbox(tmp_path, "import time\n\ndef f():\n    time.sleep(60)\n").run(_call("f"), timeout=30)
    assert len(seen["tree"]) >= 3 and seen["left"] == [], seen


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
