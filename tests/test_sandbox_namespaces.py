"""Each sandbox has its own PID and IPC namespaces, as root and without root.

Each test runs a small host script (two sandboxes side by side, from two threads) in a
subprocess: as root directly ("root"), and as a user without root ("unprivileged": as root,
in a user namespace that maps root to uid 1000, where every sandbox runs as that same user,
so only the namespaces keep them apart; without root, directly). Nothing is written outside
the temporary folders.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader.inside import wire
from grader.sandbox import Sandbox
from grader.sandbox.containment import Isolation

ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent
SHM_SIZE = 12_345 * 4096  # a size no other segment of the machine is likely to have

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PID and IPC namespaces are Linux's")

STUDENT = '''
import ctypes, os, signal, time

def _reach(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "missing"
    except PermissionError:
        return "refused"
    return "reached"

def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""

def look(grader_pid, neighbour_pids):
    listed = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
    stopped = []
    for pid in neighbour_pids:
        try:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        except OSError:
            pass
    with open("/proc/sysvipc/shm") as handle:
        shm = handle.read().splitlines()[1:]
    return {"pid": os.getpid(), "listed": listed, "cmdlines": [_cmdline(p) for p in listed],
            "base": os.path.dirname(os.getcwd()), "grader": _reach(grader_pid),
            "neighbours": [_reach(p) for p in neighbour_pids], "stopped": stopped, "shm": shm}

def hold(size, seconds):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.restype = ctypes.c_int
    shmid = libc.shmget(0, ctypes.c_size_t(size), 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    if shmid < 0:
        raise OSError(ctypes.get_errno(), "shmget")
    with open("/proc/sysvipc/shm") as handle:
        shm = handle.read().splitlines()[1:]
    time.sleep(seconds)
    return {"pid": os.getpid(), "shm": shm}
'''

HOST = '''
import json, os, sys, threading, time
from pathlib import Path
import psutil
from grader.inside import wire
from grader.sandbox.containment import Isolation
from grader.sandbox.sandbox import Sandbox

# These runs do on purpose what the audit hook refuses (ctypes, /proc walks): they test the namespaces alone.
WALLS = Isolation(audit_hook=False)

def call(func, *args):
    return {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode({})}

def value(raw):
    call = (raw.result or {}).get("call") or {}
    return wire.decode(call["value"]) if call.get("ok") else {"error": call, "timed_out": raw.timed_out}

def host_shm():
    with open("/proc/sysvipc/shm") as handle:
        return [line.split() for line in handle.read().splitlines()[1:]]

path, size = Path(sys.argv[1]), int(sys.argv[2])
runs = {}
def hold():
    runs.update(hold=Sandbox(path, "mod", isolation=WALLS).run(call("hold", size, 3.0), timeout=30))
neighbour = threading.Thread(target=hold)
neighbour.start()
def tree():
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            found.append((proc.pid, " ".join(proc.cmdline())))
        except psutil.Error:
            continue
    return found

deadline = time.monotonic() + 20
while time.monotonic() < deadline and not any("grader_boot" in cmd for _, cmd in tree()):
    time.sleep(0.05)
time.sleep(1.0)  # the neighbour has made its segment and sleeps
others = [pid for pid, _ in tree()]
during = host_shm()
looked = Sandbox(path, "mod", isolation=WALLS).run(call("look", os.getpid(), others), timeout=30)
neighbour.join()
after = []
for _ in range(50):  # an IPC namespace is freed shortly after its last process ends
    after = host_shm()
    if not any(row[3] == str(size) for row in after if len(row) > 3):
        break
    time.sleep(0.1)
hold = runs["hold"]
print(json.dumps({
    "look": value(looked),
    "hold": value(hold),
    "hold_timed_out": hold.timed_out, "neighbours": others,
    "protections": looked.protections,
    "host_during": [row for row in during if len(row) > 3 and row[3] == str(size)],
    "host_after": [row for row in after if len(row) > 3 and row[3] == str(size)],
}))
'''


def run_host(tmp_path: Path, mode: str) -> dict:
    """Run :data:`HOST` as root or as a user without root; skip where that mode cannot be had here."""
    if mode == "root" and not ROOT:
        pytest.skip("needs root")
    prefix: list[str] = []
    if mode == "unprivileged" and ROOT:
        if shutil.which("unshare") is None:
            pytest.skip("simulates an unprivileged user with unshare")
        prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    module = tmp_path / "mod.py"
    module.write_text(textwrap.dedent(STUDENT), encoding="utf-8")
    env = dict(os.environ, TMPDIR=str(tmp_path))
    done = subprocess.run([*prefix, sys.executable, "-c", HOST, str(module), str(SHM_SIZE)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    if done.returncode != 0 and "unshare failed" in done.stderr:
        pytest.skip(f"no user namespaces here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    if mode == "unprivileged" and "own PID namespace" not in " ".join(report["protections"]):
        pytest.skip("no PID namespace for a sandbox without root here")
    return report


@pytest.mark.parametrize("mode", ["root", "unprivileged"])
def test_a_sandbox_sees_and_signals_only_its_own_processes(tmp_path: Path, mode: str) -> None:
    report = run_host(tmp_path, mode)
    text = " ".join(report["protections"])
    assert "own PID namespace (sees and signals only its own processes)" in text
    seen = report["look"]
    assert "pid" in seen, seen
    assert seen["pid"] <= 10, "the first process of the sandbox has a pid of its own namespace"
    assert 1 in seen["listed"] and seen["pid"] in seen["listed"]
    assert all(seen["base"] in cmdline for cmdline in seen["cmdlines"] if cmdline), seen["cmdlines"]
    assert seen["grader"] == "missing", "the grader's pid reaches a process"
    assert report["neighbours"], "the neighbour's processes were not found"
    assert set(seen["neighbours"]) == {"missing"}, seen["neighbours"]
    assert not seen["stopped"]
    assert not report["hold_timed_out"], "the neighbour was stopped"
    assert report["hold"].get("pid", 99) <= 10


@pytest.mark.parametrize("mode", ["root", "unprivileged"])
def test_system_v_shared_memory_dies_with_the_sandbox_and_is_not_shared(tmp_path: Path, mode: str) -> None:
    report = run_host(tmp_path, mode)
    assert "own IPC namespace (System V IPC dies with the run)" in " ".join(report["protections"])
    made = [line.split() for line in report["hold"]["shm"]]
    assert any(row[3] == str(SHM_SIZE) for row in made if len(row) > 3), "the segment was not made"
    assert report["look"]["shm"] == [], "a concurrent sandbox sees the neighbour's segment"
    assert report["host_during"] == [], "the segment is in the host's IPC namespace"
    assert report["host_after"] == [], "the segment outlived the sandbox"


@pytest.mark.parametrize(
    "isolation",
    [
        Isolation(processes=False, audit_hook=False),
        Isolation(filesystem=False, processes=True, fail_closed=False, audit_hook=False),
    ],
    ids=["processes off", "no mount namespace"],  # as root, without a private root the run would be refused
)
def test_without_the_namespaces_a_run_is_as_before_and_the_lines_are_missing(tmp_path: Path, isolation: Isolation) -> None:
    module = tmp_path / "mod.py"
    module.write_text("import os\n\ndef f():\n    return os.getpid()\n", encoding="utf-8")
    raw = Sandbox(module, "mod", isolation=isolation).run(
        {"kind": "call", "func": "f", "args": wire.encode([]), "kwargs": wire.encode({})}, timeout=20
    )
    pid = wire.decode(raw.result["call"]["value"])
    assert pid == raw.main_pid and pid > 10, "the student's first process keeps the grader's pid namespace"
    text = " ".join(raw.protections)
    assert "own PID namespace" not in text and "own IPC namespace" not in text
