"""grader.processes: the trusted side finds a tree's processes without reading every process of the machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grader import processes
from grader.processes import descendants, find_tree

TREE = """
import os, subprocess, sys, threading, time

started = threading.Event()

def child_of_thread():  # the thread lives on: the kernel lists the child under it, not the main thread
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started.set()
    time.sleep(60)

threading.Thread(target=child_of_thread, daemon=True).start()
started.wait()
grandparent = subprocess.Popen([sys.executable, "-c", '''
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
time.sleep(60)
'''])
print("ready", flush=True)
time.sleep(60)
"""


def _wait_for(count: int, root: int) -> list[int]:
    for _ in range(500):
        found = [p.pid for p in psutil.Process(root).children(recursive=True)]
        if len(found) >= count:
            return found
        psutil.wait_procs([], timeout=0.02)
    raise AssertionError(f"the tree of {root} never had {count} processes")


@pytest.fixture
def tree() -> subprocess.Popen[str]:
    """A process with a child started from a second thread, and a child that has a child of its own."""
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        for p in psutil.Process(proc.pid).children(recursive=True):
            p.kill()
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_descendants_are_the_tree_psutil_sees(tree: subprocess.Popen[str]) -> None:
    expected = _wait_for(3, tree.pid)
    assert sorted(descendants(tree.pid)) == sorted(expected)
    assert len(expected) == 3


def test_descendants_without_proc_children_falls_back_to_psutil(
    tree: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _wait_for(3, tree.pid)
    monkeypatch.setattr(processes, "PROC_CHILDREN", False)
    assert sorted(descendants(tree.pid)) == sorted(expected)


def test_descendants_of_a_process_that_is_gone_is_empty() -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = int(proc.stdout)
    if psutil.pid_exists(gone):  # reused meanwhile: nothing to say
        pytest.skip("the pid was reused")
    assert descendants(gone) == []


def test_find_tree_leaves_out_the_baseline_but_not_the_tree(tree: subprocess.Popen[str]) -> None:
    expected = _wait_for(3, tree.pid)
    unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # (this process may have other descendants: earlier tests' orphans, where it became a subreaper)
        found = {p.pid for p in find_tree(tree.pid, baseline={unrelated.pid}, extra=set())}
        assert {tree.pid, *expected} <= found and unrelated.pid not in found
        found = {p.pid for p in find_tree(tree.pid, baseline=set(), extra=set())}
        assert unrelated.pid in found  # this process's own children count unless in the baseline
    finally:
        unrelated.kill()
        unrelated.wait()


ORPHAN = """
import os, sys, time
from grader.processes import become_subreaper, descendants
assert become_subreaper()
read, write = os.pipe()
if os.fork() == 0:  # the middle process: starts a grandchild, then ends, leaving it an orphan
    if os.fork() == 0:
        os.write(write, str(os.getpid()).encode())
        time.sleep(60)
    os._exit(0)
orphan = int(os.read(read, 32))
os.wait()  # the middle one
print(orphan, " ".join(map(str, descendants(os.getpid()))))
os.kill(orphan, 9)
"""


def test_an_orphan_re_parented_to_the_subreaper_is_its_descendant(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", ORPHAN], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert run.returncode == 0, run.stderr
    orphan, *found = run.stdout.split()
    assert orphan in found, run.stdout


def test_read_proc_reads_whole_files_up_to_its_limit(tmp_path: Path) -> None:
    """``read_proc`` returns what ``open().read()`` would, past one ``os.read`` too, cut at ``limit``; ``None`` if unreadable."""
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 1000)  # 256,000 bytes: several reads of 64 KiB
    assert processes.read_proc(str(big)) == big.read_bytes()
    assert processes.read_proc(str(big), 100_000) == big.read_bytes()[:100_000]
    (tmp_path / "empty").write_bytes(b"")
    assert processes.read_proc(str(tmp_path / "empty")) == b""
    assert processes.read_proc(str(tmp_path / "missing")) is None
    assert processes.read_proc(str(tmp_path)) is None  # a folder cannot be read
    if os.path.isfile("/proc/self/status"):
        status = processes.read_proc("/proc/self/status")
        assert status is not None and status.startswith(b"Name:")


def _ticks(stat: bytes) -> int:
    """User and system CPU, in clock ticks, of a ``/proc/PID/stat`` file's content."""
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")
def test_open_proc_files_read_afresh_and_let_go_of_tasks_that_ended(tmp_path: Path) -> None:
    """``OpenProcFiles`` reads what is there now (a busy task's CPU grows), what the path names once its task
    ended (the read falls back to the path), and keeps no descriptor past ``limit``, a sweep or ``close``."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        files = processes.OpenProcFiles(limit=2)
        stat = f"/proc/{busy.pid}/stat"
        cpu = []
        for _ in range(3):
            data = files.read(stat)
            assert data is not None and data.startswith(f"{busy.pid} (".encode())
            cpu.append(_ticks(data))
            deadline = time.monotonic() + 5  # until its CPU, read by path, has grown past what was just read
            while time.monotonic() < deadline:
                fresh = processes.read_proc(stat)
                if fresh is not None and _ticks(fresh) > cpu[-1]:
                    break
                time.sleep(0.02)
        assert cpu[0] < cpu[1] < cpu[2], cpu  # read again through the same descriptor: the kernel's figures of now
        assert len(files) == 1
        assert files.read(f"/proc/{os.getpid()}/status", 4) == b"Name"
        assert files.read(f"/proc/{os.getpid()}/cmdline") is not None
        assert len(files) == 2  # the third path is read by path: no descriptor past the limit
        assert files.read(str(tmp_path / "missing")) is None
        busy.kill()
        busy.wait()
        assert files.read(stat) is None  # its task ended and was reaped: read by path, which finds nothing
        assert len(files) == 1
        files.sweep()
        assert len(files) == 1  # read since the last sweep
        files.sweep()
        assert len(files) == 0  # not read since
        files.read(f"/proc/{os.getpid()}/status")
        files.close()
        assert len(files) == 0
    finally:
        busy.kill()
        busy.wait()


def test_open_proc_files_keep_at_most_an_eighth_of_the_files_the_process_may_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """The witness and the deadlock watch run side by side in a grading: each keeps few enough to leave room."""
    resource = pytest.importorskip("resource")
    monkeypatch.setattr(resource, "getrlimit", lambda which: (512, 4096))
    assert processes.OpenProcFiles().limit == 64
    monkeypatch.setattr(resource, "getrlimit", lambda which: (65536, 65536))
    assert processes.OpenProcFiles().limit == processes.MAX_OPEN
    assert processes.OpenProcFiles(limit=3).limit == 3
