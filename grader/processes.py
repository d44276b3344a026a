"""Processes of the trusted side: wait for them without polling, become their subreaper, find, kill and reap a tree.

Shared by the controller and the sandbox host (the pytest process); a bottom
layer that imports nothing of :mod:`grader`.

``subprocess.Popen.wait(timeout=...)`` sleeps in a loop (up to 50 ms between
looks on Python 3.10 to 3.13), so a child that ends is noticed up to 50 ms late.
On Linux 5.3 and later a *pidfd* becomes readable the moment its process ends:
:func:`wait_process` and :func:`wait_any` block on it with ``select.poll`` and
wake exactly then. Elsewhere they fall back to ``Popen.wait`` and short sleeps.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import psutil

__all__ = [
    "become_subreaper",
    "children",
    "describe_process",
    "descendants",
    "end_descendants",
    "find_tree",
    "is_ending",
    "is_tracker",
    "kill_tree",
    "OpenProcFiles",
    "pid_namespaces_available",
    "pidfd_of",
    "read_proc",
    "status_line",
    "stop_tree",
    "wait_any",
    "wait_process",
]


class Waitable(Protocol):
    """What is waited for and killed like a ``subprocess.Popen``: a child, or a sandbox a fork server started."""

    pid: int

    @property
    def args(self) -> Any: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def pidfd_of(pid: int) -> int | None:
    """A pidfd of ``pid`` (Linux 5.3 and later): it names that process only, never one that reuses its pid later.

    ``None`` where there is none: no ``os.pidfd_open`` here, the process is gone, or the kernel refuses.
    """
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # no such process (already reaped), or a kernel without pidfd
        return None


def wait_process(proc: Waitable, timeout: float | None) -> int:
    """``proc.wait(timeout)``, woken by the process's end instead of polling for it.

    Raises :class:`subprocess.TimeoutExpired` like ``Popen.wait``.
    """
    if timeout is None or proc.returncode is not None or not isinstance(proc, subprocess.Popen):
        return proc.wait(timeout)  # not a child of this process: it tells of its own end (a fork server's sandbox)
    fd = pidfd_of(proc.pid)
    if fd is None:
        return proc.wait(timeout)
    ended = False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                ended = bool(poller.poll(max(1, int(remaining * 1000) + 1)))
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for old kernels
                continue
    finally:
        os.close(fd)
    if not ended and proc.poll() is None:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return proc.wait()  # it has ended: reap it


def wait_any(pids: Iterable[int], timeout: float) -> None:
    """Return once any of ``pids`` has ended (or none is left to wait for), or after ``timeout`` seconds."""
    fds = [fd for fd in (pidfd_of(pid) for pid in pids) if fd is not None]
    if not fds:
        time.sleep(min(timeout, 0.02))
        return
    try:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        with contextlib.suppress(InterruptedError):
            poller.poll(max(1, int(timeout * 1000)))
    finally:
        for fd in fds:
            os.close(fd)


_SUBREAPER: bool | None = None


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux), so orphaned sandbox processes come back to it."""
    global _SUBREAPER
    if _SUBREAPER is None:
        _SUBREAPER = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                _SUBREAPER = False
    return _SUBREAPER


def end_descendants(timeout: float = 10.0) -> int:
    """Kill every process still running below this one and reap it; returns how many were found.

    With this process a child subreaper, that includes processes that escaped
    their parents with ``setsid`` and a double fork.
    """
    me = psutil.Process()
    found: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = me.children(recursive=True)
        except psutil.Error:
            children = []
        live = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    live.append(child)
            except psutil.Error:
                continue
        for child in live:
            found.add(child.pid)
            with contextlib.suppress(psutil.Error):
                child.suspend()
        for child in live:
            with contextlib.suppress(psutil.Error):
                child.kill()
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not children:
            break
        wait_any([c.pid for c in live], min(0.5, max(0.0, deadline - time.monotonic())))
    return len(found)


HELPER_MARKS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver", "grader_inside.zygote")
"""Command-line marks of ``multiprocessing``'s own helper processes, and of the sandbox's zygote (not the student's)."""


def is_tracker(proc: psutil.Process) -> bool:
    """Whether ``proc`` is a helper of :mod:`multiprocessing` (its resource tracker or forkserver, or the sandbox's
    zygote of ``spawn`` children: ``grader/inside/zygote.py``)."""
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return False
    return any(mark in cmd for mark in HELPER_MARKS)


def is_ending(proc: psutil.Process, grace: float = 0.5) -> bool:
    """Whether ``proc`` is in the middle of exiting: an empty command line (its memory is already
    released), and gone within ``grace`` seconds. A process still running code always has one."""
    try:
        if proc.cmdline():
            return False
    except psutil.ZombieProcess:
        return True
    except (psutil.Error, OSError):
        return True
    try:
        proc.wait(timeout=grace)
    except psutil.TimeoutExpired:
        return False
    except (psutil.Error, OSError, ChildProcessError):
        pass
    return True


def describe_process(proc: psutil.Process) -> dict[str, Any]:
    """``pid``, and where still readable ``name``, ``cmdline`` (cut to 300 characters), ``status`` and ``ppid``."""
    info: dict[str, Any] = {"pid": proc.pid}
    try:
        with proc.oneshot():
            info["name"] = proc.name()
            info["cmdline"] = " ".join(proc.cmdline())[:300]
            info["status"] = proc.status()
            info["ppid"] = proc.ppid()
    except (psutil.Error, OSError):
        pass
    return info


def status_line(data: bytes, name: bytes) -> bytes:
    """The line of a ``/proc/PID/status`` that starts with ``name`` (``b"Uid:"``; ``b""``: none), found without
    splitting the file: the uid scans read one of these for every process of the machine."""
    if data.startswith(name):
        at = 0
    else:
        at = data.find(b"\n" + name)
        if at < 0:
            return b""
        at += 1
    end = data.find(b"\n", at)
    return data[at:] if end < 0 else data[at:end]


def read_proc(path: str, limit: int = 1 << 20) -> bytes | None:
    """The first ``limit`` bytes of a file of ``/proc`` (all of it by default); ``None`` if it cannot be read.

    ``os.open`` and ``os.read`` rather than ``open()``: no buffered file object is made, which halves
    the CPU of reading a small file (about 5 against 10 microseconds here). The kernel witness, the
    deadlock watch and the sandbox's uid scans read thousands of these files in every grading.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


class OpenProcFiles:
    """Files of ``/proc`` read again and again through descriptors kept open (``os.pread`` from the start).

    The kernel witness reads the same few files of every task of a run fifty times a second. Opening
    a file of ``/proc`` walks its path; reading it again through the descriptor does not, and the
    kernel writes its content afresh for each read from the start: a quarter of the CPU of
    :func:`read_proc` here (about 36 against 148 microseconds for a process of eleven threads).

    A descriptor names the task it was opened for, never one that got its number later. Where a
    read through it fails (that task ended and was reaped), the descriptor is closed and the path is
    read afresh with :func:`read_proc`, which then finds whatever has that number now, as a read by
    path always did. At most ``limit`` descriptors are kept (past that, paths are read by
    :func:`read_proc`; by default :data:`MAX_OPEN`, or an eighth of the files this process may open
    where that is fewer); :meth:`sweep` closes those not read since the sweep before, and
    :meth:`close` all of them.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = _open_limit() if limit is None else limit
        self._fds: dict[str, int] = {}
        self._read: set[str] = set()

    def read(self, path: str, limit: int = 1 << 20) -> bytes | None:
        """The first ``limit`` bytes of ``path`` as it reads now; ``None`` if it cannot be read."""
        fd = self._fds.get(path)
        if fd is None:
            if len(self._fds) >= self.limit:
                return read_proc(path, limit)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return None
            self._fds[path] = fd
        self._read.add(path)
        try:
            chunks: list[bytes] = []
            size = 0
            while size < limit:
                chunk = os.pread(fd, min(limit - size, 65536), size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError:
            self._forget(path)
            return read_proc(path, limit)
        return b"".join(chunks)

    def sweep(self) -> None:
        """Close the descriptors of the paths not read since the last sweep (tasks no longer seen)."""
        for path in [p for p in self._fds if p not in self._read]:
            self._forget(path)
        self._read.clear()

    def close(self) -> None:
        """Close every descriptor kept."""
        for path in list(self._fds):
            self._forget(path)
        self._read.clear()

    def __len__(self) -> int:
        return len(self._fds)

    def _forget(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


MAX_OPEN = 256
"""Descriptors an :class:`OpenProcFiles` keeps at most by default."""


def _open_limit() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    return MAX_OPEN if soft == resource.RLIM_INFINITY else max(0, min(MAX_OPEN, soft // 8))


def _proc_children() -> bool:
    """Whether ``/proc`` lists each thread's children here (Linux with ``CONFIG_PROC_CHILDREN``)."""
    return os.path.isfile(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


PROC_CHILDREN = _proc_children()


def descendants(pid: int) -> list[int]:
    """The pids below ``pid`` (children, their children...), read from ``/proc/PID/task/TID/children``.

    A few files per process of the tree, where ``psutil``'s ``children(recursive=True)`` reads the
    ``stat`` file of every process of the machine (milliseconds each time on a busy server). Like
    psutil's, it is a snapshot: a process started meanwhile may be missed, so callers that kill look
    again. Empty for a pid that is gone; ``psutil`` is used where ``/proc`` does not list children.
    """
    if not PROC_CHILDREN:
        try:
            return [p.pid for p in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    found: list[int] = []
    seen = {pid}
    stack = [pid]
    while stack:
        for child in children(stack.pop()):
            if child not in seen:
                seen.add(child)
                found.append(child)
                stack.append(child)
    return found


def children(pid: int, files: OpenProcFiles | None = None) -> list[int]:
    """The children of every thread of ``pid`` (``/proc/PID/task/TID/children``; empty if gone or not listed).

    ``files``: read the ``children`` files through it (kept open by a caller that looks again and again)."""
    read = read_proc if files is None else files.read
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        data = read(f"/proc/{pid}/task/{tid}/children")
        if data:
            found.extend(int(v) for v in data.split() if v.isdigit())
    return found


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    """A ``psutil.Process`` for each of ``pids`` still running (or not yet reaped)."""
    found = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            found.append(psutil.Process(pid))
    return found


def find_tree(root_pid: int, baseline: set[int], extra: set[int]) -> list[psutil.Process]:
    """Every process of a tree: ``extra`` (found some other way), ``root_pid`` and its descendants, and
    this process's descendants (orphans re-parented to a subreaper), leaving out the pids of ``baseline``."""
    wanted: list[int] = [pid for pid in extra if pid not in baseline]
    wanted += [root_pid, *descendants(root_pid)]
    wanted += [pid for pid in descendants(os.getpid()) if pid not in baseline]
    return _processes(dict.fromkeys(wanted))


def kill_tree(proc: Waitable, find: Callable[[], list[psutil.Process]]) -> None:
    """Kill every process of ``proc``'s tree (``find()`` lists it, looked at again each round) and reap them.

    The process group of ``proc`` is killed while ``proc`` runs. Once ``proc``
    has ended, :func:`is_tracker` processes get up to a second to clean up
    before they are killed; every other process is suspended, then killed.
    """
    seen: set[int] = set()
    grace_until = time.monotonic() + 1.0
    for _ in range(200):
        procs = _live(find(), seen)
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if not procs:
            break
        if proc.poll() is not None and time.monotonic() < grace_until and all(is_tracker(p) for p in procs):
            wait_any([p.pid for p in procs], min(0.2, grace_until - time.monotonic()))
            continue
        _suspend_and_kill(procs)
        _reap(seen, proc.pid)
        time.sleep(0.005)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    _reap(seen, proc.pid)


def _live(procs: list[psutil.Process], seen: set[int]) -> list[psutil.Process]:
    """The processes of ``procs`` that are not zombies (every pid is added to ``seen``)."""
    live = []
    for p in procs:
        seen.add(p.pid)
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                live.append(p)
        except psutil.Error:
            continue
    return live


def _suspend_and_kill(procs: list[psutil.Process]) -> None:
    """Stop every process first (so none can start another), then kill each."""
    for p in procs:
        try:
            p.suspend()
        except psutil.Error:
            pass
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


def _reap(pids: set[int], skip: int) -> None:
    """Reap those of ``pids`` that have ended and are children of this process (all but ``skip``)."""
    for pid in pids:
        if pid == skip:
            continue
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass


def stop_tree(pid: int, grace: float) -> None:
    """End the tree of ``pid`` in two steps: ask, then kill.

    SIGTERM goes to ``pid`` and to those of its descendants in its own session (its helper
    processes, not the sandboxes it started in sessions of their own, which it is trusted to
    end itself). After up to ``grace`` seconds, every process still left of the tree, in any
    session, is killed. psutil refuses to signal a pid that was reused meanwhile.
    """
    try:
        root = psutil.Process(pid)
        session = os.getsid(pid)
    except (psutil.Error, OSError):
        return
    tree = [root, *_processes(descendants(pid))]
    for proc in tree:
        try:
            if os.getsid(proc.pid) == session:
                proc.send_signal(signal.SIGTERM)
        except (psutil.Error, OSError):
            continue
    wait_any([pid], grace)
    tree += _processes(descendants(pid))
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def pid_namespaces_available() -> bool:
    """Whether this process could give a sandbox a PID namespace of its own (as root, or inside a user namespace).

    Tried in a forked child, so nothing of this process changes. Linux only.
    """
    if not sys.platform.startswith("linux"):
        return False
    clone_newuser, clone_newpid = 0x10000000, 0x20000000
    flags = clone_newpid if os.geteuid() == 0 else clone_newpid | clone_newuser
    pid = os.fork()
    if pid == 0:  # the child: try, and say by its exit status
        try:
            ok = ctypes.CDLL(None, use_errno=True).unshare(ctypes.c_int(flags)) == 0
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0
