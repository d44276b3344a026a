"""The kernel as a second witness: which processes and threads a sandbox's tree really had.

Runs in the pytest process (the trusted checking side, the sandbox host), never inside the sandbox.
While a run is in flight, a :class:`Sampler` thread reads the sandbox's process tree from the host's
``/proc`` every :data:`INTERVAL` seconds: from the launcher's pid down through
``/proc/PID/task/TID/children`` (a few files per process of the tree, as
:mod:`grader.grading.activity` does), and, without a PID namespace, the orphans re-parented to this
process (the subreaper). For every task it records, once, its pid in the sandbox's PID namespace (the
``NSpid:`` line, the pids the evidence uses; the host pid where there is no namespace), its process
(thread-group leader) and that process's parent; and each time it is seen, the time
(``time.monotonic``, the clock of the evidence's ``t``) and, per process, the CPU time of its threads
(``/proc/PID/task/TID/schedstat``, nanoseconds; ``utime + stime`` of ``/proc/PID/stat`` as a whole).

What it returns is plain data, a :class:`KernelView`, carried by :class:`grader.sandbox.RawRun` and
cross-checked with the evidence by :mod:`grader.evidence.integrity`. Sampling misses what lived
between two samples: a view says what the kernel saw, never that something did not exist. Where
there is no ``/proc`` (macOS, Windows) nothing is sampled and the view is ``None``.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from dataclasses import dataclass, field

from grader.processes import PROC_CHILDREN, OpenProcFiles, children, pidfd_of, read_proc, status_line

__all__ = ["INTERVAL", "MAX_TASKS", "KernelTask", "KernelView", "Sampler", "available", "ns_pid"]

INTERVAL = 0.02
"""Seconds between two samples of the tree."""
MAX_TASKS = 4000
"""Tasks recorded at most in one run; past that, new tasks are not recorded (the view says so)."""
COMMAND_BYTES = 300
MAX_PIDFDS = 512
"""Processes whose exit status is read through a pidfd, at most (one descriptor each while the run lasts)."""
PIDFD_GET_INFO = 0xC040FF0B
"""``_IOWR(0xFF, 11, struct pidfd_info)`` (64 bytes, the first version of the structure)."""
PIDFD_INFO_EXIT = 1 << 3
MAX_POINTS = 200_000
"""CPU points (one per process per sample) kept at most in one run; past that, none are added."""


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


TICKS = _ticks()


def available() -> bool:
    """Whether the kernel can be sampled here (Linux ``/proc`` that lists children)."""
    return PROC_CHILDREN


@dataclass
class KernelTask:
    """One task (process or thread) the kernel showed, with the pids the sandbox's code knows."""

    host: int
    pid: int
    """The task's id in the sandbox's PID namespace (a process's pid, a thread's native id)."""
    tgid: int
    """The pid (in the namespace) of the process the task belongs to; ``pid`` itself for a process."""
    ppid: int | None
    """The pid in the namespace of the parent of the task's process (``None``: outside it, or not known)."""
    first: float
    last: float
    seen: int = 1
    cpu: float = 0.0
    """CPU seconds used, as last seen (a process: all its threads, from ``/proc/PID/stat``)."""
    exit: int | None = None
    """The wait status a process ended with (``None``: not known): from a pidfd the sampler held on it
    (``PIDFD_GET_INFO`` with ``PIDFD_INFO_EXIT``, Linux 6.15 and later: every process it saw), else a non-zero
    status where the kernel showed it as a zombie (its parent had not reaped it yet when it was sampled)."""
    command: str = ""
    """A process's command line (``/proc/PID/cmdline``, at most :data:`COMMAND_BYTES`), read at its 1st, 2nd,
    4th, 8th ... sighting so that a fork that goes on to ``exec`` is seen as what it became."""

    @property
    def thread(self) -> bool:
        """A thread of another task's process (not a thread-group leader)."""
        return self.pid != self.tgid


@dataclass
class KernelView:
    """What the kernel showed of one run's process tree, sample by sample (plain data)."""

    interval: float
    namespace: bool
    tasks: list[KernelTask] = field(default_factory=list)
    samples: list[tuple[float, float]] = field(default_factory=list)
    """``(begin, end)`` of every complete walk of the tree (``time.monotonic``)."""
    cpu: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    """pid -> ``(sample index, nanoseconds on a CPU of its live threads, number of live threads)`` per sample."""
    precise_cpu: bool = False
    """Whether :attr:`cpu` has nanoseconds (``schedstat``); without it there are no CPU points."""
    capped: bool = False
    complete: bool = True
    """Whether every process of the tree could be reached (a PID namespace, or this process is a subreaper)."""
    notes: list[str] = field(default_factory=list)

    def processes(self) -> dict[int, KernelTask]:
        """pid -> the process (thread-group leader) the kernel saw with that pid (the latest if reused)."""
        return {t.pid: t for t in self.tasks if not t.thread}

    def threads(self) -> dict[int, KernelTask]:
        """tid -> the thread (not a leader) the kernel saw with that id."""
        return {t.pid: t for t in self.tasks if t.thread}

    def samples_within(self, start: float, end: float) -> list[int]:
        """Indices of the complete samples taken entirely within ``[start, end]``."""
        return [i for i, (b, e) in enumerate(self.samples) if b >= start and e <= end]


def _nspid(path: str) -> tuple[int, bool] | None:
    """``(pid in the sandbox's namespace, nested?)`` from the ``NSpid:`` line of a status file.

    ``None`` where there is none, and where it says 0: a process being released as it is read (it ended
    just after its first message) has no pid left in the namespace, which is not another pid.
    """
    data = read_proc(path)
    if data is None:
        return None
    parts = status_line(data, b"NSpid:").split()[1:]
    try:
        found = (int(parts[1]), True) if len(parts) >= 2 else (int(parts[0]), False)
    except (IndexError, ValueError):
        return None
    return found if found[0] > 0 else None


def ns_pid(host: int) -> int | None:
    """The pid of host process ``host`` in the sandbox's PID namespace (itself without one); ``None`` if gone."""
    found = _nspid(f"/proc/{host}/status")
    return None if found is None else found[0]


def _stat(pid: int, files: OpenProcFiles) -> tuple[int, float, int | None] | None:
    """``(parent's host pid, CPU seconds of the whole process, wait status if it is a zombie)`` from ``/proc/PID/stat``.

    A zombie (state ``Z``: it ended, its parent has not reaped it yet) shows the status its parent's
    ``wait`` will get in the ``exit_code`` field (the 52nd, Linux 3.5 and later).
    """
    data = files.read(f"/proc/{pid}/stat")
    if data is None:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        status = int(fields[49]) if fields[0] == b"Z" and len(fields) > 49 else None
        return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, status
    except (IndexError, ValueError):
        return None


class Sampler:
    """Samples one sandbox's process tree from a thread of its own until :meth:`stop`."""

    def __init__(self, root: int, *, interval: float = INTERVAL, exclude: set[int] | None = None) -> None:
        self.root = root
        self.interval = interval
        self.exclude = set(exclude or ())
        self._known: dict[int, KernelTask] = {}
        self._leader: dict[int, int] = {}  # host tid of a thread -> host pid of its process
        self._parent: dict[int, int] = {}  # host pid of a process -> its parent's host pid
        self._ns: dict[int, int | None] = {}  # host id -> id in the namespace (None: not readable)
        self._nested: dict[int, bool] = {}  # host id -> whether it is in a PID namespace of its own
        self._cpu: dict[int, list[tuple[int, int, int]]] = {}
        self._view = KernelView(interval=interval, namespace=False, precise_cpu=True)
        self._points = 0
        self._pidfds: dict[int, int] = {}  # host pid of a process -> a pidfd of it (its exit status is read after)
        self._files = OpenProcFiles()  # the tasks' stat, children and schedstat, read again each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="grader-kernel-witness", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> KernelView:
        """Stop sampling (one last sample first) and return what the kernel showed."""
        self._stop.set()
        self._thread.join()
        self._files.close()
        view = self._view
        view.namespace = any(self._nested.values())
        inside = {h for h in self._known if not view.namespace or self._nested.get(h)}
        for host in inside:
            task = self._known[host]
            parent = self._parent.get(self._leader.get(host, host))
            if parent is not None and (not view.namespace or self._nested.get(parent)):
                task.ppid = self._ns.get(parent)
            view.tasks.append(task)
        view.cpu = {self._known[h].pid: points for h, points in self._cpu.items() if h in inside}
        for host, fd in self._pidfds.items():
            status = _exit_status(fd)
            if status is not None:
                self._known[host].exit = status
            os.close(fd)
        self._pidfds.clear()
        if view.capped:
            view.notes.append(f"the kernel witness recorded the first {MAX_TASKS} tasks of the run only")
        return view

    def _loop(self) -> None:
        while True:
            stopping = self._stop.is_set()
            begin = time.monotonic()
            try:
                self._sample(begin, len(self._view.samples))
            except Exception as exc:  # the witness must never break a run
                self._view.notes.append(f"the kernel witness stopped: {type(exc).__name__}: {exc}")
                return
            self._view.samples.append((begin, time.monotonic()))
            if stopping:
                return
            self._stop.wait(self.interval)

    def _roots(self) -> list[int]:
        roots = [self.root]
        if not any(self._nested.values()):  # no namespace: orphans are re-parented to this process
            roots += [c for c in children(os.getpid()) if c not in self.exclude and c != self.root]
        return roots

    def _sample(self, now: float, index: int) -> None:
        stack, walked = self._roots(), set()
        while stack:
            pid = stack.pop()
            if pid in walked:
                continue
            walked.add(pid)
            stat = _stat(pid, self._files)
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
            except (OSError, ValueError):
                continue
            total, live = 0, 0
            for tid in tids:
                base = f"/proc/{pid}/task/{tid}"
                listed = self._files.read(f"{base}/children")
                if listed:
                    stack.extend(int(v) for v in listed.split() if v.isdigit())
                self._record(pid, tid, stat, now)
                runtime = self._runtime(base)
                if runtime is not None:
                    total, live = total + runtime, live + 1
            if pid in self._known and live == len(tids) and self._points < MAX_POINTS:
                self._cpu.setdefault(pid, []).append((index, total, live))
                self._points += 1
        self._files.sweep()  # the files of tasks that are gone

    def _runtime(self, base: str) -> int | None:
        """Nanoseconds a thread spent on a CPU (``None``: it ended, or the kernel has no ``schedstat``)."""
        if not self._view.precise_cpu:
            return None
        data = self._files.read(f"{base}/schedstat")
        if data is None and not os.path.exists("/proc/self/schedstat"):
            self._view.precise_cpu = False
            self._cpu.clear()
        try:
            return int(data.split()[0]) if data else None
        except (IndexError, ValueError):
            return None

    def _ns_of(self, host: int, path: str) -> int | None:
        if host not in self._ns:
            found = _nspid(path)
            self._ns[host] = None if found is None else found[0]
            if found is not None:
                self._nested[host] = found[1]
        return self._ns[host]

    def _record(self, pid: int, tid: int, stat: tuple[int, float, int | None] | None, now: float) -> None:
        """Note that task ``tid`` of process ``pid`` was seen now."""
        task = self._known.get(tid)
        if task is not None:
            task.last, task.seen = now, task.seen + 1
            if tid == pid and stat is not None:
                task.cpu = stat[1]
                task.exit = stat[2] or task.exit
            if tid == pid and task.seen & (task.seen - 1) == 0:
                task.command = _command(pid) or task.command
            return
        if len(self._known) >= MAX_TASKS:
            self._view.capped = True
            return
        tgid = self._ns_of(pid, f"/proc/{pid}/status")
        ns = tgid if tid == pid else self._ns_of(tid, f"/proc/{pid}/task/{tid}/status")
        if tgid is None or ns is None:
            return
        self._leader[tid] = pid
        if tid == pid and stat is not None:
            self._parent[pid] = stat[0]
            self._ns_of(stat[0], f"/proc/{stat[0]}/status")
        leader = stat if stat is not None and tid == pid else None
        self._known[tid] = KernelTask(tid, ns, tgid, None, now, now, cpu=leader[1] if leader else 0.0,
                                      exit=leader[2] or None if leader else None, command=_command(pid) if leader else "")
        if leader and len(self._pidfds) < MAX_PIDFDS:
            fd = pidfd_of(pid)
            if fd is not None:
                self._pidfds[tid] = fd


def _exit_status(pidfd: int) -> int | None:
    """The wait status of the (reaped) process of ``pidfd``, where the kernel keeps it (Linux 6.15 and later)."""
    try:
        import fcntl
    except ImportError:
        return None
    info = bytearray(64)
    struct.pack_into("Q", info, 0, PIDFD_INFO_EXIT)
    try:
        fcntl.ioctl(pidfd, PIDFD_GET_INFO, info)
    except OSError:
        return None
    mask, status = struct.unpack_from("Q", info, 0)[0], struct.unpack_from("i", info, 60)[0]
    return status if mask & PIDFD_INFO_EXIT else None


def _command(pid: int) -> str:
    """The start of a process's command line, its arguments joined by spaces ('' if gone)."""
    data = read_proc(f"/proc/{pid}/cmdline", COMMAND_BYTES)
    if data is None:
        return ""
    return data.replace(b"\0", b" ").decode("utf-8", "replace").strip()
