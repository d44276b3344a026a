"""Read where every process of a sandbox is, from the outside, before it is killed; the typed stacks.

Trusted side (the pytest process). :func:`collect` takes the processes of a hung
(or left-over) sandbox and returns, per process, a :class:`ProcessStack`: each of
its threads as a :class:`ThreadStack` with the Python frames (innermost first,
each marked as the student's, the grader's or a library's), whether the thread
was running or waiting, the CPU time it used while it was watched, and what the
kernel says it waits for (``/proc/<pid>/task/<tid>/wchan``, Linux).
:mod:`grader.diagnosis` reads these objects as they are; nothing is serialised.

Two ways to read a stack, whichever works:

- **py-spy** (``py-spy dump --json``) reads the interpreter's memory through
  ``ptrace``; it needs no cooperation from the student's process (which may
  have undone any hook) and sees threads by their OS id. It needs
  ``CAP_SYS_PTRACE`` for another user's process (root has it) or a permissive
  ``kernel.yama.ptrace_scope``. Dumps run in parallel, one ``py-spy`` per
  process, each with a deadline.
- **faulthandler**: every sandbox process registered ``faulthandler`` on
  ``SIGUSR1`` (``grader_inside.probes.install_stacks``), writing all threads
  to ``out/stacks/<pid>.txt``. Used for the processes py-spy could not read,
  because the signal interrupts blocking calls and, in a process that never
  installed the handler, ends it.

Busy or blocked: the CPU time of every process and thread is sampled before
and after the dumps (at least :data:`CPU_WINDOW` seconds apart), so a thread
spinning in a loop is told from one waiting in a blocking call.

``via`` is ``None`` and ``error`` says why when no stack could be read.

:func:`parse_stack` builds a :class:`ProcessStack` from a recorded stack
document (JSON, ``threads[].frames`` innermost first), for tests and replays::

    {"pid": 123, "ppid": 120, "name": "python3", "via": "py-spy", "error": null, "notes": [],
     "work_dir": "/tmp/grader-sandbox-x/work", "support_dir": "/tmp/grader-sandbox-x/support",
     "window": 0.31, "cpu": 0.0,
     "threads": [{"id": 123, "name": "MainThread", "active": false, "cpu": 0.0,
                  "wchan": "futex_do_wait", "running": 0.0,
                  "frames": [{"func": "increment", "file": ".../work/locked_counter.py", "line": 12}]}]}
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from grader.processes import read_proc, status_line
from grader.sandbox.readback import STACK_BYTES, Refused, read_back

__all__ = [
    "CPU_WINDOW",
    "Frame",
    "ProcessStack",
    "ThreadStack",
    "collect",
    "find_py_spy",
    "parse_faulthandler",
    "parse_stack",
]

CPU_WINDOW = 0.3
STATE_EVERY = 0.02
MIN_STATE_LOOKS = 5
TOTAL_BUDGET = 2.5
PY_SPY_TIMEOUT = 1.5
FAULTHANDLER_WAIT = 0.8
MAX_THREADS = 64
MAX_FRAMES = 80
MAX_TEXT = 300
MAX_DUMP_BYTES = 4 * 1024 * 1024

_THREAD = re.compile(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<func>\S+)')


# -- the typed stacks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One Python frame: where, and whose code (the student's, the grader's or a library's)."""

    file: str
    line: int
    func: str
    owner: str = "library"  # "student", "grader" or "library"

    @property
    def basename(self) -> str:
        return self.file.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def library(self) -> str:
        """A short name of a library file: ``multiprocessing/queues.py``, ``threading.py``."""
        path = self.file.replace("\\", "/")
        for marker in ("/multiprocessing/", "/concurrent/", "/asyncio/"):
            if marker in path:
                return marker.strip("/") + "/" + path.split(marker, 1)[1]
        return self.basename

    def short_func(self) -> str:
        return self.func.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class ThreadStack:
    """One thread of a process: frames innermost first, and whether it ran or waited."""

    thread: str
    current: bool
    frames: tuple[Frame, ...]
    name: str = ""
    active: bool | None = None
    cpu: float | None = None
    wchan: str | None = None
    running: float | None = None
    """The share of the kernel's looks at it while it was watched in which it ran or waited only for a CPU
    (state ``R``): load delays a running thread but never puts it to sleep, nor wakes a blocked one."""

    def visible_frames(self) -> tuple[Frame, ...]:
        """The frames without the grader's own (its probes' wrappers and its runner)."""
        return tuple(f for f in self.frames if f.owner != "grader")

    def student_frame(self) -> Frame | None:
        """The innermost frame in the student's own files."""
        for frame in self.frames:
            if frame.owner == "student":
                return frame
        return None

    def student_frames(self) -> list[Frame]:
        """The student's frames, innermost first."""
        return [f for f in self.frames if f.owner == "student"]

    def blocking_call(self) -> Frame | None:
        """The library call the student's code made (the frame just inside its innermost frame)."""
        frames = self.visible_frames()
        for index, frame in enumerate(frames):
            if frame.owner == "student":
                return frames[index - 1] if index > 0 else None
        return frames[-1] if frames else None


@dataclass(frozen=True)
class ProcessStack:
    """What was read of one process; ``work_dir`` is the sandbox's folder of the student's files."""

    pid: int
    threads: tuple[ThreadStack, ...]
    via: str | None = None
    error: str | None = None
    ppid: int | None = None
    name: str = ""
    cpu: float | None = None
    window: float | None = None
    notes: tuple[str, ...] = ()
    work_dir: str | None = None


def _owner(file: str, work_dir: str | None, support_dir: str | None) -> str:
    path = file.replace("\\", "/")
    if work_dir is None:
        return "library"
    if path.startswith(work_dir.rstrip("/") + "/"):
        return "student"
    if support_dir is not None and path.startswith(support_dir.rstrip("/") + "/"):
        return "grader"
    return "library"


def _cut(value: Any) -> str:
    return str(value)[:MAX_TEXT]


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def parse_faulthandler(text: str, work_dir: str | None, support_dir: str | None) -> list[ThreadStack]:
    """The threads of a ``faulthandler.dump_traceback(all_threads=True)`` dump (at most the first 64)."""
    threads: list[ThreadStack] = []
    name: str | None = None
    current = False
    frames: list[Frame] = []
    for line in text.splitlines():
        head = _THREAD.match(line)
        if head:
            if name is not None:
                threads.append(ThreadStack(name, current, tuple(frames)))
            name, current, frames = head.group(2), head.group(1) == "Current thread", []
            continue
        frame = _FRAME.match(line)
        if frame and name is not None and len(frames) < MAX_FRAMES:
            file = _cut(frame.group("file"))
            frames.append(Frame(file, int(frame.group("line")), _cut(frame.group("func")),
                                _owner(file, work_dir, support_dir)))
    if name is not None:
        threads.append(ThreadStack(name, current, tuple(frames)))
    return threads[:MAX_THREADS]


def parse_stack(pid: int, document: str) -> ProcessStack:
    """One process's stack from a recorded stack document (JSON, see the module docs)."""
    doc = json.loads(document)
    if not isinstance(doc, dict):
        raise ValueError("a stack document is a JSON object")
    work = doc.get("work_dir") if isinstance(doc.get("work_dir"), str) else None
    support = doc.get("support_dir") if isinstance(doc.get("support_dir"), str) else None
    threads = [_doc_thread(raw, work, support) for raw in doc.get("threads", []) if isinstance(raw, dict)]
    window = _number(doc.get("window"))
    notes = doc.get("notes")
    return ProcessStack(
        pid=pid,
        threads=tuple(threads),
        via=doc.get("via") if isinstance(doc.get("via"), str) else None,
        error=str(doc["error"]) if doc.get("error") else None,
        ppid=doc.get("ppid") if type(doc.get("ppid")) is int else None,
        name=str(doc.get("name") or ""),
        cpu=_number(doc.get("cpu")),
        window=window if window is not None and window > 0 else None,
        notes=tuple(str(note) for note in notes) if isinstance(notes, list) else (),
        work_dir=work,
    )


def _doc_thread(raw: dict[str, Any], work: str | None, support: str | None) -> ThreadStack:
    frames = tuple(
        Frame(str(f.get("file", "?")), int(f["line"]), str(f.get("func", "?")),
              _owner(str(f.get("file", "")), work, support))
        for f in raw.get("frames", [])
        if isinstance(f, dict) and type(f.get("line")) is int
    )
    return ThreadStack(
        thread=str(raw.get("id", "?")),
        current=bool(raw.get("current", False)),
        frames=frames,
        name=str(raw.get("name") or ""),
        active=raw.get("active") if isinstance(raw.get("active"), bool) else None,
        cpu=_number(raw.get("cpu")),
        wchan=str(raw["wchan"]) if isinstance(raw.get("wchan"), str) else None,
        running=_number(raw.get("running")),
    )


# -- reading the processes -------------------------------------------------------------------------


def find_py_spy() -> str | None:
    """The ``py-spy`` executable: beside this interpreter (a virtual environment), else on ``PATH``."""
    name = "py-spy.exe" if sys.platform == "win32" else "py-spy"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def _cpu(proc: psutil.Process) -> tuple[float | None, dict[int, float]]:
    """CPU seconds used so far by the process and by each of its threads (OS ids)."""
    try:
        with proc.oneshot():
            times = proc.cpu_times()
            threads = {t.id: t.user_time + t.system_time for t in proc.threads()}
        return times.user + times.system, threads
    except (psutil.Error, OSError):
        return None, {}


def _host_tids(pid: int) -> dict[int, int]:
    """The thread ids of a process as it sees them (its PID namespace) -> as this host sees them."""
    found: dict[int, int] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            line = status_line(read_proc(f"/proc/{pid}/task/{tid}/status", 4096) or b"", b"NSpid:")
            found[int(line.split()[-1])] = int(tid)
        except (OSError, ValueError, IndexError):
            continue
    return found


def _wchan(pid: int, tid: int) -> str | None:
    """What the kernel says the thread sleeps in (``futex_do_wait``, ``pipe_write``...), Linux only."""
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan", encoding="ascii", errors="replace") as handle:
            text = handle.read(100).strip()
    except OSError:
        return None
    return text if text and text != "0" else None


_Threads = list[tuple[int | None, ThreadStack]]  # each thread with its OS id, when the reader gave one


@dataclass
class _Reading:
    """One process while it is read: filled step by step, then frozen by :meth:`stack`.

    ``threads`` pairs each thread with its OS id (``None`` when the reader did not give one),
    which the CPU sampling needs.
    """

    proc: psutil.Process
    work_dir: str
    support_dir: str
    ppid: int | None = None
    name: str = ""
    via: str | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    threads: _Threads = field(default_factory=list)
    cpu_before: tuple[float | None, dict[int, float]] = (None, {})
    cpu: float | None = None
    window: float | None = None

    @classmethod
    def start(cls, proc: psutil.Process, base: Path) -> _Reading:
        """What the process is (parent, name) and its CPU time so far."""
        reading = cls(proc, str(base / "work"), str(base / "support"))
        try:
            with proc.oneshot():
                reading.ppid = proc.ppid()
                reading.name = _cut(proc.name())
        except (psutil.Error, OSError):
            pass
        reading.cpu_before = _cpu(proc)
        return reading

    def stack(self) -> ProcessStack:
        return ProcessStack(
            pid=self.proc.pid,
            threads=tuple(thread for _, thread in self.threads),
            via=self.via,
            error=self.error,
            ppid=self.ppid,
            name=self.name,
            cpu=self.cpu,
            window=self.window if self.window is not None and self.window > 0 else None,
            notes=tuple(self.notes),
            work_dir=self.work_dir,
        )


def _py_spy(executable: str, reading: _Reading, timeout: float) -> tuple[_Threads | None, str | None]:
    """Threads of the process read by py-spy, or ``None`` and why not."""
    try:
        done = subprocess.run(
            [executable, "dump", "--pid", str(reading.proc.pid), "--json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=max(0.05, timeout),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"py-spy did not answer within {timeout:.1f} s"
    except OSError as exc:
        return None, f"py-spy could not be started: {exc}"
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "py-spy: " + _cut(message[0] if message else f"exit status {done.returncode}")
    try:
        data = json.loads(done.stdout[:MAX_DUMP_BYTES])
    except ValueError:
        return None, "py-spy gave output that is not JSON"
    if not isinstance(data, list):
        return None, "py-spy gave an unexpected document"
    return [_py_spy_thread(raw, reading) for raw in data[:MAX_THREADS] if isinstance(raw, dict)], None


def _py_spy_thread(raw: dict[str, Any], reading: _Reading) -> tuple[int | None, ThreadStack]:
    """One thread of py-spy's JSON, and its OS id (``None`` when py-spy gave none)."""
    frames = []
    for frame in raw.get("frames", [])[:MAX_FRAMES]:
        if isinstance(frame, dict) and type(frame.get("line")) is int:
            file = _cut(frame.get("filename", "?"))
            frames.append(Frame(file, frame["line"], _cut(frame.get("name", "?")),
                                _owner(file, reading.work_dir, reading.support_dir)))
    os_id = raw.get("os_thread_id")
    ident = os_id if type(os_id) is int else raw.get("thread_id")
    tid = ident if type(ident) is int else None
    thread = ThreadStack(
        thread=str(ident),
        current=False,
        frames=tuple(frames),
        name=_cut(raw.get("thread_name") or ""),
        active=bool(raw.get("active")),
    )
    return tid, thread


def _read_with_py_spy(readings: list[_Reading], executable: str, deadline: float) -> None:
    """Read every process with py-spy, up to 8 at a time; a failure is kept as a note."""

    def dump(reading: _Reading) -> tuple[_Reading, _Threads | None, str | None]:
        threads, error = _py_spy(executable, reading, min(PY_SPY_TIMEOUT, deadline - time.monotonic()))
        if threads is not None:  # py-spy names threads as their process sees them: in a PID namespace, not the host's
            hosts = _host_tids(reading.proc.pid)
            threads = [(hosts.get(tid, tid) if tid is not None else None, thread) for tid, thread in threads]
        if threads is not None:  # what the kernel says each thread waits for, right after the dump
            threads = [(tid, replace(thread, wchan=_wchan(reading.proc.pid, tid)) if tid is not None else thread)
                       for tid, thread in threads]
        return reading, threads, error

    with ThreadPoolExecutor(max_workers=min(8, len(readings))) as pool:
        for reading, threads, error in pool.map(dump, readings):
            if threads is not None:
                reading.via = "py-spy"
                reading.threads = threads
            else:
                reading.notes.append(error or "py-spy failed")


def _kernel_state(pid: int, tid: int) -> str | None:
    """The thread's state letter in ``/proc/PID/task/TID/stat`` (``R`` running or runnable, ``S`` sleeping...)."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat", "rb") as handle:
            data = handle.read(1024)
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2 :]
    return rest[:1].decode("ascii", "replace") or None


def _ended(pid: int) -> bool:
    """Whether process ``pid`` has no thread left running (gone, or a zombie waiting to be reaped)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    return all(_kernel_state(pid, int(tid)) in (None, "Z", "X") for tid in tasks if tid.isdigit())


def _watch_states(readings: list[_Reading], until: float) -> dict[tuple[int, int], float]:
    """(pid, tid) -> the share of looks, every STATE_EVERY s until ``until`` (at least MIN_STATE_LOOKS), in state R.

    A thread that ended while it was watched was not stuck anywhere: its share is 0. Once every process
    watched has ended, there is nothing left to tell apart and the watch stops."""
    looks: dict[tuple[int, int], list[bool]] = {}
    ended: set[tuple[int, int]] = set()
    count = 0
    while count < MIN_STATE_LOOKS or time.monotonic() < until:
        if count and all(_ended(reading.proc.pid) for reading in readings):
            ended.update(looks)
            break
        for reading in readings:
            for tid, _ in reading.threads:
                state = _kernel_state(reading.proc.pid, tid) if tid is not None else None
                if tid is not None and state in (None, "Z", "X") and (reading.proc.pid, tid) in looks:
                    ended.add((reading.proc.pid, tid))
                elif tid is not None and state is not None:
                    looks.setdefault((reading.proc.pid, tid), []).append(state == "R")
        count += 1
        time.sleep(STATE_EVERY)
    return {key: 0.0 if key in ended else sum(seen) / len(seen) for key, seen in looks.items()
            if key in ended or len(seen) >= MIN_STATE_LOOKS}


def _measure_cpu(readings: list[_Reading], started: float) -> None:
    """The CPU each process and thread used since :meth:`_Reading.start`, over a window of at least CPU_WINDOW,
    and how often the kernel showed each thread running meanwhile."""
    # the CPU window must be long enough to tell a spinning thread from a waiting one
    running = _watch_states(readings, started + CPU_WINDOW)
    window = time.monotonic() - started
    for reading in readings:
        before_total, before_threads = reading.cpu_before
        after_total, after_threads = _cpu(reading.proc)
        reading.window = round(window, 3)
        if before_total is not None and after_total is not None:
            reading.cpu = round(max(0.0, after_total - before_total), 3)
        reading.threads = [
            (tid, replace(thread, cpu=round(max(0.0, after_threads[tid] - before_threads[tid]), 3)))
            if tid is not None and tid in before_threads and tid in after_threads
            else (tid, thread)
            for tid, thread in reading.threads
        ]
        reading.threads = [(tid, replace(thread, running=running.get((reading.proc.pid, tid or -1))))
                           for tid, thread in reading.threads]


def _faulthandler_dumps(
    procs: list[psutil.Process], out: Path, deadline: float, names: dict[int, int] | None = None
) -> dict[int, list[ThreadStack]]:
    """Ask each process for a faulthandler dump (``SIGUSR1``) and read what arrives before ``deadline``.

    A process writes ``out/stacks/<its own pid>.txt``: ``names`` maps a host pid to that pid where they differ.
    """
    if not hasattr(signal, "SIGUSR1"):
        return {}
    files = {proc.pid: out / "stacks" / f"{(names or {}).get(proc.pid, proc.pid)}.txt" for proc in procs}
    sizes: dict[int, int] = {}
    for proc in procs:
        path = files[proc.pid]
        try:
            sizes[proc.pid] = path.stat().st_size
        except OSError:
            sizes[proc.pid] = 0
        with contextlib.suppress(psutil.Error, OSError, ValueError):
            proc.send_signal(signal.SIGUSR1)
    work, support = str(out.parent / "work"), str(out.parent / "support")
    found: dict[int, list[ThreadStack]] = {}
    gone: set[int] = set()  # ended: what their file holds is all that will ever arrive
    last_size: dict[int, int] = {}
    while True:
        for pid, before in sizes.items():
            if pid in found or pid in gone:
                continue
            ended = _ended(pid)  # before the size: a dump written before the end is then complete
            path = files[pid]
            try:
                size = path.stat().st_size
            except OSError:
                size = before
            # a dump is complete once the file stops growing between two looks, or its writer ended
            if size > before and (ended or last_size.get(pid) == size):
                threads = parse_faulthandler(_dump_text(path, before, size), work, support)
                if threads:
                    found[pid] = threads
            if ended:
                gone.add(pid)
            last_size[pid] = size
        if len(found.keys() | gone) == len(sizes) or time.monotonic() >= deadline:
            return found
        time.sleep(0.03)


def _dump_text(path: Path, before: int, size: int) -> str:
    """What a process appended to its faulthandler file (at most its last 256 KiB)."""
    try:  # plain files only, bounded: the student may have swapped the file for a link or a FIFO
        got = read_back(path, STACK_BYTES, what="a stack dump", start=max(before, size - STACK_BYTES), over="cut")
    except (Refused, OSError):
        return ""
    return got.data.decode("utf-8", "replace")


def _read_with_faulthandler(
    missing: list[_Reading], out: Path, deadline: float, names: dict[int, int] | None = None
) -> None:
    """Read the processes py-spy could not read from their faulthandler dumps; say why when none arrives."""
    if not missing:
        return
    until = min(deadline, time.monotonic() + FAULTHANDLER_WAIT)
    dumps = _faulthandler_dumps([r.proc for r in missing], out, until, names)
    for reading in missing:
        if reading.proc.pid in dumps:
            reading.via = "faulthandler"
            reading.threads = [(None, thread) for thread in dumps[reading.proc.pid]]
        else:
            reading.error = "; ".join(reading.notes + ["no faulthandler dump arrived (the process may not run "
                                                       "Python, or its code replaced the grader's handler)"])


def collect(
    procs: list[psutil.Process],
    out: Path,
    *,
    budget: float = TOTAL_BUDGET,
    py_spy: str | None = None,
    use_py_spy: bool = True,
    names: dict[int, int] | None = None,
    idle_for: float | None = None,
) -> dict[int, ProcessStack]:
    """Stacks of ``procs`` (pid -> :class:`ProcessStack`), within about ``budget`` seconds.

    ``names``: the pid each process knows itself by, where it is not the host's (a PID namespace).
    ``idle_for``: the seconds of a proven deadlock (:attr:`grader.sandbox.blocked.Proof.window`), over which no
    thread of ``procs`` ran: what :func:`_measure_cpu` would watch for :data:`CPU_WINDOW` is known (no CPU, never running).
    """
    started = time.monotonic()
    deadline = started + budget
    executable = (py_spy or find_py_spy()) if use_py_spy else None
    by_pid = {proc.pid: _Reading.start(proc, out.parent) for proc in procs}
    readings = list(by_pid.values())
    if executable is not None and readings:
        _read_with_py_spy(readings, executable, deadline)
    elif use_py_spy:
        for reading in readings:
            reading.notes.append("py-spy is not installed")
    if idle_for:  # every thread was seen asleep with the same CPU time over the proof's window, and none can wake
        for reading in readings:
            reading.window, reading.cpu = round(idle_for, 3), 0.0
            reading.threads = [(tid, replace(t, cpu=0.0, running=0.0) if tid else t) for tid, t in reading.threads]
    else:
        _measure_cpu(readings, started)
    _read_with_faulthandler([r for r in readings if r.via is None], out, deadline, names)
    return {pid: reading.stack() for pid, reading in by_pid.items()}
