"""The kernel's proof that a sandbox's process tree is deadlocked: every thread waits for good, nothing runs.

Runs in the pytest process (the sandbox host), on the host's ``/proc``; it reads nothing the student's
code can write, so neither a student nor the machine's load can fake a proof. While a run is under
way, :class:`DeadlockWatch` looks at every thread of every process of the tree every
:data:`LOOK_EVERY` seconds:

- its state (``/proc/PID/task/TID/stat``): a thread that is running or waiting for a CPU (``R``), in
  an uninterruptible wait (``D``), stopped (``T``) or in any other state than an interruptible sleep
  (``S``) makes the look inconclusive at once;
- the system call it sleeps in, with its arguments (``/proc/PID/task/TID/syscall``). Only waits that
  have no time limit and that only another thread of the tree can end count (:func:`untimed_wait`):
  ``futex`` wait without a timeout (a lock, a semaphore, a condition, ``join()`` of a thread),
  ``wait4``/``waitid`` without ``WNOHANG`` (``join()`` of a process), ``read``/``write`` and their
  socket forms on a pipe or an unnamed Unix socket (``Queue.get``, ``Connection.recv``, a queue's
  feeder thread writing into a full pipe), and ``poll``/``select``/``epoll`` without a timeout in a
  process whose open files are all pipes, unnamed sockets or plain files. A sleep, any wait with a
  timeout, a signal wait and any other call make the look inconclusive;
- the nanoseconds it has spent on a CPU (``/proc/PID/task/TID/schedstat``).

A pipe counts as the tree's own: the sandbox hands its tree no pipe a process outside it holds (stdin is
``/dev/null``, output goes to files, the launcher's status pipe is only ever read by the host once the
run is over). A process that catches ``SIGALRM`` or holds a POSIX timer may be woken by the clock: its tree is never
proven deadlocked. The proof is the same set of threads, each in the same system call with the same
arguments and with the same CPU time to the nanosecond, in at least :data:`MIN_LOOKS` looks spanning at
least :data:`CONFIRM` seconds: no thread ran in between, so none can wake another, and every one
waits for something only another of them could give. Only a tree the host can see whole (a child
subreaper, a PID namespace or cgroups) is watched; elsewhere, and on kernels or machines without these
files, the time limit alone ends a run.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from grader.processes import OpenProcFiles, Waitable, children, read_proc, status_line, wait_process

__all__ = [
    "CONFIRM", "LOOK_EVERY", "DeadlockWatch", "Proof", "available", "own_children", "tree", "untimed_wait",
    "wait_or_prove",
]

LOOK_EVERY = 0.05
"""Seconds between two looks at the tree."""
CONFIRM = 0.15
"""Seconds for which nothing may change before a deadlock is proven.

Two looks already prove it: a thread that ran between them, or was woken, shows another CPU time or
another state. The window and the third look are a margin, not the proof. They were 0.3 s and one look
every 0.1 s until 7 December 2026; with 0.15 s, a deadlocked run ends about 0.15 s sooner, and the
corpora graded quiet and beside 2 and 4 CPU burners gave the same verdicts and proofs
(``benchmarks/diagnosis_under_load.py``, ``docs/scale.md``)."""
MIN_LOOKS = 3
MAX_TASKS = 512
"""A tree with more threads than this is not watched (the time limit ends it)."""

LOCK = "a lock, semaphore or condition"
CHILD = "a child process to end"
PIPE = "a pipe"
PIPES = "data on pipes (poll)"

_SYSCALLS = {
    # name: (x86_64 number, aarch64 number); None where the architecture has no such call
    "read": (0, 63), "write": (1, 64), "readv": (19, 65), "writev": (20, 66),
    "recvfrom": (45, 207), "sendto": (44, 206), "recvmsg": (47, 212), "sendmsg": (46, 211),
    "poll": (7, None), "select": (23, None), "ppoll": (271, 73), "pselect6": (270, 72),
    "epoll_wait": (232, None), "epoll_pwait": (281, 22), "epoll_pwait2": (441, 441),
    "futex": (202, 98), "wait4": (61, 260), "waitid": (247, 95),
}
_ARCH = {"x86_64": 0, "amd64": 0, "aarch64": 1, "arm64": 1}.get(platform.machine().lower())
NUMBERS: dict[int, str] = (
    {numbers[_ARCH]: name for name, numbers in _SYSCALLS.items() if numbers[_ARCH] is not None}  # type: ignore[misc]
    if _ARCH is not None else {}
)
_FD_CALLS = {"read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg", "sendmsg"}
_FUTEX_WAITS = {0, 9}  # FUTEX_WAIT, FUTEX_WAIT_BITSET (with the private and clock flags masked off)
_WNOHANG = 1
_SIGALRM_BIT = 1 << 13
_QUIET_FILES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/shm/")


def available() -> bool:
    """Whether threads can be watched here (Linux ``/proc`` with ``syscall`` files, a known architecture)."""
    me = os.getpid()
    return bool(NUMBERS) and os.path.exists(f"/proc/{me}/task/{me}/syscall")


def tree(roots: Iterable[int], files: OpenProcFiles | None = None) -> list[int]:
    """``roots`` and all their descendants (through ``/proc/PID/task/TID/children``), each once.

    ``files``: read the ``children`` files through it (kept open from one look to the next)."""
    seen: dict[int, None] = {}  # in the order found
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in seen:
            seen[pid] = None
            stack.extend(children(pid, files))
    return list(seen)


def _signed32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


class _Files:
    """What a process's file descriptors are, read once per look: only the tree can act on an internal one."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._unnamed: set[str] | None = None

    def unnamed_sockets(self) -> set[str]:
        """Inodes of the Unix sockets without a name (socketpairs, ``multiprocessing.Pipe``) in its network view."""
        if self._unnamed is None:
            self._unnamed = set()
            for line in (read_proc(f"/proc/{self.pid}/net/unix") or b"").splitlines()[1:]:
                fields = line.split()
                if len(fields) == 7:
                    self._unnamed.add(fields[6].decode("ascii", "replace"))
        return self._unnamed

    def internal(self, fd: int | str) -> bool:
        """A pipe, an unnamed Unix socket, an eventfd or epoll instance, or a file nothing outside can make ready."""
        try:
            target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
        except OSError:
            return False
        if target.startswith("pipe:") or target in ("anon_inode:[eventfd]", "anon_inode:[eventpoll]"):
            return True
        if target.startswith("socket:["):
            return target[8:-1] in self.unnamed_sockets()
        if target.startswith("/dev/"):
            return target.startswith(_QUIET_FILES)
        return target.startswith("/")

    def all_internal(self) -> bool:
        try:
            fds = os.listdir(f"/proc/{self.pid}/fd")
        except OSError:
            return False
        return all(self.internal(fd) for fd in fds)


def untimed_wait(syscall: tuple[int, ...], files: _Files) -> str | None:
    """What a thread sleeping in ``syscall`` (number and arguments) waits for, if only the tree can end it.

    ``None``: the call has a time limit, can be ended from outside the tree, or is not known here.
    """
    if len(syscall) < 7:
        return None
    name, args = NUMBERS.get(syscall[0]), syscall[1:7]
    if name == "futex":
        return LOCK if (args[1] & 0x7F) in _FUTEX_WAITS and args[3] == 0 else None
    if name in ("wait4", "waitid"):
        return CHILD if not args[2 if name == "wait4" else 3] & _WNOHANG else None
    if name in _FD_CALLS:
        return PIPE if files.internal(args[0]) else None
    untimed = {
        "poll": _signed32(args[2]) < 0, "epoll_wait": _signed32(args[3]) < 0, "epoll_pwait": _signed32(args[3]) < 0,
        "ppoll": args[2] == 0, "select": args[4] == 0, "pselect6": args[4] == 0, "epoll_pwait2": args[3] == 0,
    }.get(name or "", False)
    return PIPES if untimed and files.all_internal() else None


def _clock_can_wake(pid: int) -> bool:
    """Whether the process catches ``SIGALRM`` or holds a POSIX timer (the clock may wake it; unknown: yes)."""
    status = read_proc(f"/proc/{pid}/status", 8192)
    if status is None:
        return True
    caught = status_line(status, b"SigCgt:")
    if caught:
        try:
            if int(caught.split()[1], 16) & _SIGALRM_BIT:
                return True
        except (IndexError, ValueError):
            return True
    timers = read_proc(f"/proc/{pid}/timers", 8192)
    return bool(timers and timers.strip())


def _state(pid: int, tid: int, files: OpenProcFiles) -> str | None:
    data = files.read(f"/proc/{pid}/task/{tid}/stat", 8192)
    if not data:
        return None
    rest = data[data.rfind(b")") + 2 :]
    return rest[:1].decode("ascii", "replace") if rest else None


@dataclass(frozen=True)
class _Look:
    """One look at a tree whose threads all waited without a time limit."""

    at: float
    threads: dict[tuple[int, int], tuple[tuple[int, ...], int]]
    """``(pid, tid)`` -> (the system call with its arguments, nanoseconds on a CPU so far)."""
    waits: dict[tuple[int, int], str]


def _look(pids: list[int], at: float, opened: OpenProcFiles) -> _Look | None:
    """The tree's threads if every one sleeps in a wait only the tree can end; ``None`` as soon as one does not.

    ``opened``: the threads' ``stat``, ``syscall`` and ``schedstat`` are read through it (kept open between looks)."""
    tasks: list[tuple[int, int]] = []
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except (OSError, ValueError):
            continue  # ended (and reaped) since the walk
        for tid in tids:
            state = _state(pid, tid, opened)
            if state in ("Z", "X", None):
                continue
            if state != "S":
                return None
            tasks.append((pid, tid))
    if not tasks or len(tasks) > MAX_TASKS:
        return None
    threads: dict[tuple[int, int], tuple[tuple[int, ...], int]] = {}
    waits: dict[tuple[int, int], str] = {}
    files: dict[int, _Files] = {}
    for pid, tid in tasks:
        base = f"/proc/{pid}/task/{tid}"
        try:
            syscall = tuple(int(v, 0) for v in (opened.read(f"{base}/syscall", 8192) or b"").split())
            runtime = int((opened.read(f"{base}/schedstat", 8192) or b"").split()[0])
        except (ValueError, IndexError):
            return None
        wait = untimed_wait(syscall, files.setdefault(pid, _Files(pid)))
        if wait is None or _state(pid, tid, opened) != "S":
            return None
        threads[(pid, tid)] = (syscall, runtime)
        waits[(pid, tid)] = wait
    if any(_clock_can_wake(pid) for pid in files):
        return None
    return _Look(at, threads, waits)


@dataclass(frozen=True)
class Proof:
    """Why a run was found deadlocked, as plain data: what the kernel showed for how long."""

    processes: int
    threads: int
    window: float
    """Seconds during which no thread of the tree ran."""
    waits: tuple[tuple[str, int], ...]
    """What the threads waited for, with how many threads waited for each."""

    def describe(self) -> str:
        """``every thread of every process of the run waited without a time limit (for a lock, ...) and ...``."""
        what = ", ".join(words for words, _ in self.waits)
        return (f"every thread of every process of the run waited without a time limit (for {what}) and none of "
                f"them ran for {self.window:.1f} s: each waits for another, so none can ever continue")


class DeadlockWatch:
    """Looks at a tree again and again; :meth:`look` says once the looks prove it deadlocked."""

    def __init__(self, *, confirm: float = CONFIRM, min_looks: int = MIN_LOOKS) -> None:
        self.confirm = confirm
        self.min_looks = min_looks
        self.proof: Proof | None = None
        self._looks: list[_Look] = []
        self.files = OpenProcFiles()
        """The tree's files, kept open from one look to the next (:meth:`close` them)."""

    def close(self) -> None:
        self.files.close()

    def look(self, pids: list[int], at: float) -> bool:
        """Look at the threads of ``pids`` now (``at``: ``time.monotonic()``); ``True`` once a deadlock is proven."""
        found = _look(pids, at, self.files)
        self.files.sweep()  # the files of threads that ended
        if found is None:
            self._looks = []
            return False
        if self._looks and self._looks[-1].threads != found.threads:
            self._looks = []
        self._looks.append(found)
        first = self._looks[0]
        if len(self._looks) < self.min_looks or found.at - first.at < self.confirm:
            return False
        counts = Counter(found.waits.values())
        self.proof = Proof(
            processes=len({pid for pid, _ in found.threads}),
            threads=len(found.threads),
            window=round(found.at - first.at, 2),
            waits=tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0]))),
        )
        return True


def own_children() -> list[int]:
    """The children of every thread of this process (orphans of a sandbox come back here: a subreaper)."""
    return children(os.getpid())


def wait_or_prove(proc: Waitable, timeout: float, roots: Callable[[], list[int]]) -> Proof | None:
    """Wait for ``proc`` to end, at most ``timeout`` seconds, watching its tree (``roots()`` and their descendants).

    Returns ``None`` when it ended, the :class:`Proof` when its tree was found deadlocked first; raises
    :class:`subprocess.TimeoutExpired` when the time ran out, as :func:`grader.processes.wait_process` does.
    """
    deadline = time.monotonic() + timeout
    watch = DeadlockWatch()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(proc.args, timeout)
            try:
                wait_process(proc, min(remaining, LOOK_EVERY))  # woken by the end itself
                return None
            except subprocess.TimeoutExpired:
                pass
            if watch.look(tree(roots(), watch.files), time.monotonic()):
                return watch.proof
    finally:
        watch.close()
