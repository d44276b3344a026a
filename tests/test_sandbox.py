"""The sandbox on its own: plain data back, every process gone, output capped."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader.inside import wire
from grader.sandbox import Isolation, Limits, Sandbox
from grader.sandbox.containment import Cgroups, lease_uid, mount_tmpfs
from grader.sandbox.readback import SENT_BY, clean_text


def sandbox(
    tmp_path: Path, source: str, start_method: str | None = "spawn", isolation: Isolation | None = None
) -> Sandbox:
    path = tmp_path / "mod.py"
    path.write_text(textwrap.dedent(source))
    return Sandbox(path, "mod", start_method=start_method, isolation=isolation or Isolation())


def call(func: str, *args: object) -> dict:
    return {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode({})}


def test_return_value_comes_back_as_plain_data(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, "def f():\n    return [1, 'a', (2.5, None), {3: b'x'}, {4}]\n")
    raw = sb.run(call("f"), timeout=10)
    assert wire.decode(raw.result["call"]["value"]) == [1, "a", (2.5, None), {3: b"x"}, {4}]


def test_an_object_with_a_lying_eq_is_opaque(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        class Liar(list):
            def __eq__(self, other):
                return True

        def f():
            return Liar([1])
        """,
    )
    raw = sb.run(call("f"), timeout=10)
    value = wire.decode(raw.result["call"]["value"])
    assert value != [1]
    assert isinstance(value, wire.Opaque)


def test_escaped_double_forked_daemon_is_killed(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import os, time

        def f():
            r, w = os.pipe()
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.write(w, str(os.getpid()).encode())
                    os.close(w)
                    while True:
                        time.sleep(0.05)
                os._exit(0)
            os.close(w)
            pid = int(os.read(r, 100))
            time.sleep(0.5)
            return pid
        """,
        start_method=None,
    )
    raw = sb.run(call("f"), timeout=10)
    assert raw.result["call"]["ok"]
    pid = wire.decode(raw.result["call"]["value"])
    assert any(p["pid"] == pid for p in raw.leftovers), "leftovers name processes by the student's pids"
    time.sleep(0.2)
    assert not _alive_sandbox_processes()


def _alive_sandbox_processes() -> list[psutil.Process]:
    """Processes below this one still running a sandbox's Python (its pids may be a PID namespace's)."""
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "grader_boot" in " ".join(proc.cmdline()):
                alive.append(proc)
        except psutil.Error:  # it ended while we looked
            continue
    return alive


def test_timeout_collects_stacks_then_kills(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import multiprocessing, time

        def sleeper():
            time.sleep(60)

        def f():
            p = multiprocessing.Process(target=sleeper)
            p.start()
            p.join()
        """,
    )
    started = time.monotonic()
    raw = sb.run(call("f"), timeout=3)
    assert raw.timed_out
    assert time.monotonic() - started < 10
    assert len(raw.stacks) >= 2
    frames = [f for stack in raw.stacks.values() for thread in stack.threads for f in thread.frames]
    assert any(f.file.endswith("mod.py") and "sleeper" in f.func for f in frames)
    assert not _alive_sandbox_processes()


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, "def f():\n    print('first')\n    print('x' * 1_000_000)\n    print('last')\n")
    raw = sb.run(call("f"), timeout=10)
    assert raw.stdout.startswith("first")
    assert raw.stdout.rstrip().endswith("last")
    assert "bytes of output cut" in raw.stdout
    assert len(raw.stdout) < 100_000


def test_output_of_concurrent_threads_never_mixes_lines(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import threading

        def f():
            def talk(i):
                for _ in range(200):
                    print(f"[{i}] line")
            ts = [threading.Thread(target=talk, args=(i,)) for i in range(8)]
            for t in ts: t.start()
            for t in ts: t.join()
        """,
    )
    raw = sb.run(call("f"), timeout=20)
    lines = raw.stdout.splitlines()
    assert len(lines) == 1600
    assert all(line.endswith("] line") and line.count("[") == 1 for line in lines)


def test_clean_text_escapes_control_characters_and_bad_utf8() -> None:
    assert clean_text(b"ok\x1b[31mred\xff\n") == "ok\\x1b[31mred\ufffd\n"


@pytest.mark.parametrize(
    "value",
    [0, -5, 2**70, 1.5, float("inf"), "s", b"b", (1, (2,)), [1, [2]], {"a": 1}, {(1, 2): "t"}, {1, 2}, frozenset({3})]
    + [None, True],
)
def test_wire_round_trip(value: object) -> None:
    decoded = wire.decode(wire.encode(value))
    assert decoded == value and type(decoded) is type(value)


ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent

PROBE_ISOLATION = """
import os, socket

def f(repo):
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=2).close()
        net = "connected"
    except OSError as exc:
        net = type(exc).__name__
    return {"uid": os.getuid(), "repo": os.path.exists(repo), "net": net, "tmp": os.environ["TMPDIR"]}
"""


@pytest.mark.root
@pytest.mark.skipif(not ROOT, reason="needs root: own uid, cgroups and namespaces")
def test_as_root_a_sandbox_has_its_own_uid_no_network_and_no_view_of_the_checkout(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, PROBE_ISOLATION)
    raw = sb.run(call("f", str(REPO)), timeout=20)
    seen = wire.decode(raw.result["call"]["value"])
    assert seen["uid"] >= 60000 and seen["uid"] != os.getuid()
    assert seen["repo"] is False, "the grader's checkout is visible to student code"
    assert seen["net"] != "connected"
    text = " ".join(raw.protections)
    for words in ("own unprivileged uid", "no network", "private file system view", "cgroup", "per-process limits"):
        assert words in text, f"{words!r} not in {raw.protections}"


@pytest.mark.skipif(not ROOT, reason="needs root: uid leases")
def test_concurrent_sandboxes_never_share_a_uid(tmp_path: Path) -> None:
    leases = [lease_uid(lock_dir=tmp_path / "locks") for _ in range(5)]
    try:
        uids = [lease.uid for lease in leases if lease is not None]
        assert len(uids) == 5 and len(set(uids)) == 5
    finally:
        for lease in leases:
            if lease is not None:
                lease.release()
    again = lease_uid(base=uids[0], count=1, lock_dir=tmp_path / "locks")
    assert again is not None and again.uid == uids[0], "a released uid can be leased again"
    again.release()


@pytest.mark.skipif(
    not ROOT or shutil.which("unshare") is None, reason="simulates an unprivileged user with unshare (needs root)"
)
def test_without_root_a_sandbox_still_has_no_network_and_no_view_of_the_checkout(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text(PROBE_ISOLATION)
    script = (
        "import json, sys\nfrom pathlib import Path\nfrom grader.sandbox.sandbox import Sandbox\nfrom grader.inside import wire\n"
        f"sb = Sandbox(Path({str(path)!r}), 'mod')\n"
        f"raw = sb.run({call('f', str(REPO))!r}, timeout=20)\n"
        "print(json.dumps({'value': raw.result['call']['value'], 'protections': raw.protections}))\n"
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-user=1000", "--map-group=1000", sys.executable, "-c", script],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    seen = wire.decode(report["value"])
    text = " ".join(report["protections"])
    assert seen["uid"] == 1000, "without root the sandbox keeps the user's uid"
    assert "own unprivileged uid" not in text and "cgroup" not in text
    assert "no network" in text and seen["net"] != "connected"
    assert "private file system view" in text and seen["repo"] is False


def test_a_link_planted_in_place_of_the_output_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("grader-secret-contents\n")
    secret.chmod(0o644)
    sb = sandbox(
        tmp_path,
        """
        import os

        def f(target):
            out = os.environ["GRADER_SANDBOX_OUT"]
            for name in ("stdout.txt", "result.json", "evidence.jsonl", "evidence.sock"):
                try:
                    os.unlink(os.path.join(out, name))
                except OSError:
                    pass
                os.symlink(target, os.path.join(out, name))
            os._exit(0)
        """,
        isolation=Isolation(audit_hook=False),  # the read-back's own wall, without the hook that refuses the unlink
    )
    raw = sb.run(call("f", str(secret)), timeout=20)
    assert "grader-secret-contents" not in raw.stdout
    assert raw.result is None
    assert raw.events == [] or all(SENT_BY in e for e in raw.events), "evidence comes only from the stream, if any"
    assert not any("grader-secret-contents" in json.dumps(e) for e in raw.events)


@pytest.mark.parametrize(("status", "line"), [
    (b"Name:\tpython\nUid:\t61990\t0\t0\t0\nGid:\t0\t0\t0\t0\n", b"Uid:\t61990\t0\t0\t0"),
    (b"Uid:\t1\t2\t3\t4\nGid:\t0", b"Uid:\t1\t2\t3\t4"),
    (b"Name:\tx\nUid:\t7\t7\t61990\t7", b"Uid:\t7\t7\t61990\t7"),
    (b"Name:\tUid: 61990\nGid:\t0\n", b""),
], ids=["among others", "first", "last, no newline", "only inside another line"])
def test_the_uid_scan_reads_the_uid_line_of_a_proc_status(status: bytes, line: bytes) -> None:
    from grader.processes import status_line

    assert status_line(status, b"Uid:") == line


@pytest.mark.skipif(not ROOT, reason="needs root: mounts and cgroups")
def test_leasing_a_uid_cleans_what_a_dead_grader_left_under_it(tmp_path: Path) -> None:
    uid = 61990
    stale = Path(tempfile.mkdtemp(prefix=f"grader-sandbox-{uid}-"))
    assert mount_tmpfs(stale, 1024 * 1024)
    groups = Cgroups(stale.name, Limits())
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=lambda: os.setuid(uid))
    try:
        lease = lease_uid(base=uid, count=1, lock_dir=tmp_path / "locks")
        assert lease is not None
        lease.release()
        assert sleeper.wait(timeout=10) == -9, "a process left under the uid was not killed"
        assert not stale.exists(), "the stale sandbox folder is still there"
        assert not any(path.exists() for path in groups.paths), "the stale cgroups are still there"
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("other_thread", [False, True], ids=["alone", "with another thread"])
def test_an_alarm_during_a_run_waits_until_the_tree_is_cleaned_up(tmp_path: Path, other_thread: bool) -> None:
    # Under pytest-xdist the worker has other threads, which the kernel may hand the alarm to.
    sb = sandbox(tmp_path, "import time\n\ndef f():\n    time.sleep(1.5)\n    return 1\n")
    stop = threading.Event()
    if other_thread:
        threading.Thread(target=stop.wait, daemon=True).start()
    fired: list[float] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    try:
        started = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.3)  # pytest-timeout's alarm, due in the middle of the run
        raw = sb.run(call("f"), timeout=20)
        time.sleep(0.2)
    finally:
        stop.set()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert raw.result["call"]["ok"]
    assert fired and fired[0] - started >= 1.5, "the alarm cut the run short"


PROBE_PRIVILEGES = """
import os, sys

def f():
    status = open("/proc/self/status").read()
    no_new_privs = [line.split()[1] for line in status.splitlines() if line.startswith("NoNewPrivs:")]
    return {"no_new_privs": no_new_privs[0] if no_new_privs else None, "env": sorted(os.environ),
            "home": os.environ.get("HOME", ""), "path": sys.path}
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="no_new_privs is Linux's")
def test_student_code_runs_with_no_new_privs_and_a_scrubbed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "must-not-reach-the-student")
    sb = sandbox(tmp_path, PROBE_PRIVILEGES)
    raw = sb.run(call("f"), timeout=20)
    seen = wire.decode(raw.result["call"]["value"])
    assert seen["no_new_privs"] == "1", "setuid programs could give the student privileges back"
    own = {"PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONNOUSERSITE", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONSAFEPATH"}
    assert not [k for k in seen["env"] if k.startswith("PYTHON") and k not in own], seen["env"]  # only the sandbox's own
    assert "GRADER_SECRET_TOKEN" not in seen["env"], "the grader's environment reached the student's code"
    assert str(REPO) not in seen["path"], "the grader's checkout is on the student's import path"
    assert "no_new_privs" in " ".join(raw.protections) and "scrubbed environment" in " ".join(raw.protections)


def test_a_run_isolated_from_nothing_says_so_first_and_in_full() -> None:
    """Without a uid of its own or a PID namespace, a run can see and signal the other runs of the user."""
    from grader.exporters.terminal import render_text
    from grader.model.results import SubmissionResult
    from grader.sandbox.containment import NOT_ISOLATED, list_protections

    exposed = list_protections({"network_namespace": True}, Limits(), None, True, False)
    assert exposed[0] == NOT_ISOLATED
    for status in ({"pid_namespace": True}, {"uid": 60001}):
        assert NOT_ISOLATED not in list_protections(status, Limits(), None, True, False)
    text = render_text(SubmissionResult(assignment="a", student="", submission="s", protections=exposed))
    assert NOT_ISOLATED in text, "the report must say in full that the run was not isolated"


SITE_AND_TRACKER = '''
import multiprocessing as mp
import os
import sys


def child(lock, value):
    with lock:
        value.value += 1


def f(use_exit):
    lock, value = mp.Lock(), mp.Value("i", 0)
    workers = [mp.Process(target=child, args=(lock, value)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seen = {"no_site": sys.flags.no_site, "site_packages": [p for p in sys.path if "-packages" in p],
            "builtins": [name for name in ("exit", "quit", "help", "copyright") if name in dir(__builtins__)
                         or (isinstance(__builtins__, dict) and name in __builtins__)],
            "total": value.value}
    if use_exit:
        exit(3)
    return seen
'''


def _tracker_commands(raw: Any) -> list[str]:
    """The command lines of the resource trackers the kernel saw in a run."""
    return [t.command for t in raw.kernel.tasks if not t.thread and "resource_tracker" in t.command]


def test_student_code_runs_without_site_packages_but_with_exit_and_quit(tmp_path: Path) -> None:
    """Sandboxes start Python with -S (no .pth files, no site-packages); site's exit(), quit()... are still there."""
    sb = sandbox(tmp_path, SITE_AND_TRACKER)
    raw = sb.run(call("f", False), timeout=30)
    seen = wire.decode(raw.result["call"]["value"])
    assert seen["no_site"] == 1 and seen["site_packages"] == [], seen
    assert seen["builtins"] == ["exit", "quit", "help", "copyright"], seen
    assert seen["total"] == 2, "a Lock and a Value shared with spawn children work as usual"
    (tmp_path / "again").mkdir()
    ended = sandbox(tmp_path / "again", SITE_AND_TRACKER).run(call("f", True), timeout=30)
    error = ended.result["call"]["error"]
    assert (error["type"], error["message"]) == ("SystemExit", "3"), "exit(3) is site's exit(), not a NameError"


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.geteuid() == 0), reason="a private /dev/shm needs root here")
def test_with_a_private_dev_shm_no_resource_tracker_is_started(tmp_path: Path) -> None:
    """A run whose tree has its own /dev/shm starts no resource tracker; one without a private root does."""
    raw = sandbox(tmp_path, SITE_AND_TRACKER).run(call("f", False), timeout=30)
    assert wire.decode(raw.result["call"]["value"])["total"] == 2
    assert raw.kernel is not None and len(raw.kernel.tasks) >= 3, "the kernel saw the run's processes"
    assert _tracker_commands(raw) == [], _tracker_commands(raw)
    (tmp_path / "shared").mkdir()
    shared = Isolation(filesystem=False, fail_closed=False, audit_hook=False)  # the host's /dev/shm
    raw = sandbox(tmp_path / "shared", SITE_AND_TRACKER, isolation=shared).run(call("f", False), timeout=30)
    assert wire.decode(raw.result["call"]["value"])["total"] == 2
    assert len(_tracker_commands(raw)) == 1, "with the host's /dev/shm the tracker cleans up after killed processes"


SHADOWS_THE_GUARD = '''
import multiprocessing as mp
import os
import sys

FAKE = """
import os, sys
for entry in sys.path:
    if os.path.isfile(os.path.join(entry, "grader_boot.py")):
        __path__ = [os.path.join(entry, "grader_" + "inside")]  # the real probes, from the real folder
        break
from . import guard  # the real guard...
guard.install = lambda *args: None  # ...that installs no audit hook
os.environ["SHADOWED"] = "1"
"""


def child(queue):
    try:
        sys._getframe(0)
        frames = "allowed"
    except PermissionError:
        frames = "refused"
    package = sys.modules["grader_" + "inside"]
    queue.put((os.environ.get("SHADOWED", ""), frames, os.path.basename(os.path.dirname(os.path.dirname(package.__file__)))))


def f():
    package = os.path.join(os.path.dirname(os.path.abspath(__file__)), "grader_" + "inside")
    os.makedirs(package, exist_ok=True)
    with open(os.path.join(package, "__init__.py"), "w") as out:
        out.write(FAKE)
    queue = mp.Queue()
    worker = mp.Process(target=child, args=(queue,))
    worker.start()
    seen = queue.get(timeout=20)
    worker.join()
    return [*seen, worker.exitcode]
'''


def test_a_grader_inside_package_written_into_the_work_folder_is_not_what_children_import(tmp_path: Path) -> None:
    """A spawn child starts with its parent's sys.path, the student's folder first: the guard still comes from support/.

    The student's code writes a ``grader_inside`` package beside itself whose ``guard`` installs nothing, then
    starts a child. The child must run the grader's own guard (its frame walk refused) and never the student's
    package.
    """
    raw = sandbox(tmp_path, SHADOWS_THE_GUARD).run(call("f"), timeout=60)
    assert raw.result["call"].get("error") is None, raw.result["call"]
    shadowed, frames, folder, exitcode = wire.decode(raw.result["call"]["value"])
    assert (shadowed, frames, exitcode) == ("", "refused", 0), (shadowed, frames, exitcode)
    assert folder == "support", f"the child's grader_inside came from {folder}/, not the sandbox's support folder"


WRITES_A_DRIVER = '''
import os
import sys
import types

FORGED = "def echo(module, value):\\n    return 'forged by the student'\\n"
NAME = "grader_" + "drivers"
if WAY == "file":  # a file named like the drivers, in the student's folder (first on sys.path)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), NAME + ".py"), "w") as out:
        out.write(FORGED)
else:  # a module under the drivers' name, already loaded
    fake = types.ModuleType(NAME)
    exec(FORGED, fake.__dict__)
    sys.modules[NAME] = fake
'''


@pytest.mark.parametrize("way", ["file", "sys.modules"])
def test_the_assignment_drivers_are_the_support_folders_whatever_the_student_module_left(tmp_path: Path, way: str) -> None:
    """A student module that, on import, leaves a module named like the drivers does not become the driver."""
    drivers = tmp_path / "drivers.py"
    drivers.write_text("def echo(module, value):\n    return value\n")
    source = tmp_path / "mod.py"
    source.write_text(f"WAY = {way!r}\n" + WRITES_A_DRIVER)
    sb = Sandbox(source, "mod", start_method="spawn", support_modules={"grader_drivers": drivers}, isolation=Isolation())
    action = {"kind": "driver", "driver_module": "grader_drivers", "func": "echo", "args": wire.encode(["honest"]),
              "kwargs": wire.encode({})}
    raw = sb.run(action, timeout=30)
    assert raw.result["call"].get("ok"), raw.result
    assert wire.decode(raw.result["call"]["value"]) == "honest"


SHADOWS_A_STANDARD_MODULE = '''
import multiprocessing as mp
import os
import sys


def child(queue):
    queue.put([os.environ.get("SHADOWED", ""), "" in sys.path])


def grandchild_parent(queue):
    worker = mp.Process(target=child, args=(queue,))
    worker.start()
    worker.join()
    queue.put(worker.exitcode)


def f(name, depth, method="spawn"):
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, name), "w") as out:
        out.write("import os, sys\\nos.environ['SHADOWED'] = '1'\\nsys.stderr.write('SHADOWED\\\\n')\\nraise SystemExit(7)\\n")
    context = mp.get_context(method)
    queue = context.Queue()
    worker = context.Process(target=child if depth == 1 else grandchild_parent, args=(queue,))
    worker.start()
    worker.join()
    seen = [queue.get(timeout=5) for _ in range(depth)] if worker.exitcode == 0 else None
    return [worker.exitcode, seen, os.getcwd() == here]
'''


@pytest.mark.parametrize(
    ("name", "depth", "method"),
    [("multiprocessing.py", 1, "spawn"), ("pkgutil.py", 1, "spawn"), ("json.py", 1, "spawn"), ("json.py", 2, "spawn"),
     ("json.py", 1, "forkserver")],
    ids=["multiprocessing", "pkgutil", "json", "json-grandchild", "json-forkserver"],
)
def test_a_standard_module_written_into_the_work_folder_does_not_run_in_a_spawn_child(
    tmp_path: Path, name: str, depth: int, method: str
) -> None:
    """A spawn child must not import a module of the student's folder before its guard is installed.

    The student's code writes a module named like one the child imports before the guard: what the
    ``-c`` program imports (``multiprocessing``: the working folder, ``''``, comes first for it), what
    ``runpy`` and the boot script import once ``spawn_main`` has put the parent's ``sys.path`` (the
    student's folder first) in place (``pkgutil``, ``json``). A child's own children too, and a forkserver.
    """
    raw = sandbox(tmp_path, SHADOWS_A_STANDARD_MODULE).run(call("f", name, depth, method), timeout=60)
    assert raw.result["call"].get("error") is None, raw.result["call"]
    exitcode, seen, in_work_folder = wire.decode(raw.result["call"]["value"])
    assert in_work_folder, "the test needs the run's working folder to be the student's"
    assert "SHADOWED" not in raw.stderr, raw.stderr[-2000:]
    expected = [["", False]] if depth == 1 else [["", False], 0]
    assert (exitcode, seen) == (0, expected), (exitcode, seen, raw.stderr[-2000:])


TRACKER_AFTER_A_SHADOW = '''
import multiprocessing as mp
import os
import time


def f():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "multiprocessing.py"), "w") as out:
        out.write("import sys\\nsys.stderr.write('SHADOWED\\\\n')\\nraise SystemExit(7)\\n")
    lock = mp.Lock()  # a named semaphore: multiprocessing starts its resource tracker
    with lock:
        time.sleep(0.1)  # the kernel witness samples every 20 ms: long enough for it to see the tracker
        return os.getcwd() == here
'''


def test_the_resource_tracker_imports_nothing_from_the_work_folder(tmp_path: Path) -> None:
    """``multiprocessing``'s resource tracker (``python -c``, started in the student's folder) runs no file of the student's.

    The tracker runs no guard at all. It starts where the run's tree shares the host's ``/dev/shm``.
    """
    shared = Isolation(filesystem=False, fail_closed=False, audit_hook=False)  # the host's /dev/shm: a tracker starts
    raw = sandbox(tmp_path, TRACKER_AFTER_A_SHADOW, isolation=shared).run(call("f"), timeout=30)
    assert wire.decode(raw.result["call"]["value"]) is True, raw.result["call"]
    assert len(_tracker_commands(raw)) == 1, "the test needs the run to start a resource tracker"
    assert "SHADOWED" not in raw.stderr, raw.stderr[-2000:]
