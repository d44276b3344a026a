"""What one thread was waiting for, from its frames, its CPU use and the kernel's wait channel.

Runs in the pytest process, on the stacks the sandbox read back (:mod:`grader.sandbox.stacks`).
:func:`classify` names what a thread was doing as a :class:`Wait`: a keyword the deadlock
patterns (:mod:`grader.diagnosis.patterns`) test and a text for the student. It tells a
busy thread from a blocked one by CPU use, names the library call the student's code made
(``Queue.get``, ``Process.join``, ``Connection.send``...), and, when the student's own line
is the innermost frame (a C call such as ``lock.acquire()`` or ``time.sleep()``), reads that
source line through :class:`SourceReader` and the kernel's wait channel.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from grader.sandbox.stacks import Frame, ProcessStack, ThreadStack

__all__ = ["SourceReader", "Wait", "classify", "cpu_words", "kernel_wait"]

IDLE_SHARE = 0.01  # below this share of a CPU while watched, a thread was not running
CLOCK_TICK = 0.01  # the kernel counts CPU time in ticks of 1/USER_HZ (100 Hz)
BUSY_SHARE = 0.1
RUNNING_SHARE = 0.5  # a thread the kernel showed running or runnable at half its looks or more is busy
MAX_SOURCE_BYTES = 2 * 1024 * 1024

_ACQUIRE_LINE = re.compile(r"\.acquire\s*\(|^\s*(async\s+)?with\b")
_SLEEP_LINE = re.compile(r"\bsleep\s*\(")


# -- what each thread waits for ---------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """What a thread was doing: ``kind`` is a keyword the patterns use, ``text`` says it in words."""

    kind: str  # join, thread_join, get, put, recv, send, acquire, sync_wait, sleep, pool_wait, idle_worker,
    #            feeder, feeder_idle, exiting, busy, blocked, unknown
    text: str
    call: Frame | None = None

    @property
    def short(self) -> str:
        """The text without its details (the library frame in brackets, the explanation after a colon)."""
        return self.text.split(" [", 1)[0].split(": ", 1)[0].split(" (it used", 1)[0]


_KERNEL_WAITS = (
    ("futex", "a lock, semaphore or condition"),
    ("pipe_write", "room in a full pipe"),
    ("pipe_read", "data from an empty pipe"),
    ("pipe_wait", "a pipe"),
    ("nanosleep", "a sleep to end"),
    ("do_wait", "a child process to end"),
    ("wait4", "a child process to end"),
    ("poll", "data to arrive (poll)"),
    ("select", "data to arrive (select)"),
    ("unix_stream", "data on a socket"),
)


def kernel_wait(wchan: str | None) -> str | None:
    """The kernel's wait channel of a thread, in words."""
    if not wchan:
        return None
    for key, words in _KERNEL_WAITS:
        if key in wchan:
            return words
    return None


def _is(frame: Frame, library: str, *funcs: str) -> bool:
    return frame.library == library and frame.short_func() in funcs


def _busy(thread: ThreadStack, process: ProcessStack) -> bool:
    if thread.running is not None:
        # the kernel's own word, which load cannot move: a thread that spins is running or waiting for a CPU
        # (R) at every look however loaded the machine, one blocked in a call sleeps (S) at every look
        return thread.running >= RUNNING_SHARE
    if thread.cpu is not None and process.window:
        share = thread.cpu / process.window
        # No CPU at all while watched is blocked, whatever the stack reader's "active" flag says (py-spy
        # marks a thread waiting inside a C call such as SemLock.acquire as active on some Pythons).
        # CPU time is counted in clock ticks (10 ms): one tick is indistinguishable from none.
        if share < IDLE_SHARE or thread.cpu <= CLOCK_TICK * 1.5:
            return False
        return share >= BUSY_SHARE or bool(thread.active and kernel_wait(thread.wchan) is None)
    if process.cpu is not None and process.window and process.cpu / process.window < IDLE_SHARE:
        return False  # the whole process used no CPU while watched: none of its threads was running
    if thread.active is not None:
        return thread.active
    if process.cpu is not None and process.window and (thread.current or len(process.threads) == 1):
        return process.cpu / process.window >= BUSY_SHARE
    return False


def classify(thread: ThreadStack, process: ProcessStack, source: SourceReader | None = None) -> Wait:
    """What one thread was doing, from its frames, its CPU use and the kernel's wait channel."""
    frames = thread.visible_frames()
    if not frames:
        return Wait("unknown", "no Python frames")
    machinery = _queue_machinery(thread, frames)
    if machinery is not None:
        return machinery
    student = thread.student_frame()
    # the call the student's code made; in a thread without student code, the first call that says something
    candidates = [thread.blocking_call()] if student is not None else list(reversed(frames))
    for call in candidates:
        found = _library_wait(call, frames)
        if found is not None:
            return found
    call = thread.blocking_call()
    if thread.running is not None and student is not None and frames[0] is student and _blocking_line(student, source):
        # caught on the student's own line calling time.sleep() or acquire(): runnable there means it was just woken
        return _call_on_student_line(thread, student, source)
    if _busy(thread, process):
        where = student or frames[0]
        return Wait("busy", "running, not waiting" + cpu_words(thread, process), where)
    if student is not None and frames[0].owner == "student":
        return _call_on_student_line(thread, student, source)
    inner = frames[0]
    kernel = kernel_wait(thread.wchan)
    text = f"waiting in {inner.short_func()} ({inner.library}, line {inner.line})"
    return Wait("blocked", text + (f", for {kernel}" if kernel else ""), call or inner)


def _queue_machinery(thread: ThreadStack, frames: tuple[Frame, ...]) -> Wait | None:
    """A queue's feeder thread, or a process whose code returned and that waits for its queues to flush."""
    for frame in frames:
        if _is(frame, "multiprocessing/queues.py", "_feed"):
            if any(_is(f, "multiprocessing/connection.py", "_send", "_send_bytes", "send_bytes") for f in frames):
                return Wait("feeder", "writing items put on a multiprocessing.Queue into its pipe, which is full: "
                            "nobody is reading that queue", frame)
            return Wait("feeder_idle", "queue feeder thread, idle", frame)
        finalizing = _is(frame, "multiprocessing/queues.py", "_finalize_join") or _is(
            frame, "multiprocessing/util.py", "_exit_function"
        )
        if finalizing and thread.student_frame() is None:
            return Wait("exiting", "ending: its code has returned, but the process first waits until everything "
                        "it put on a multiprocessing.Queue has been written into the queue's pipe", frame)
    return None


def _blocking_line(student: Frame, source: SourceReader | None) -> bool:
    code = source.line(student) if source else ""
    return bool(_SLEEP_LINE.search(code) or _ACQUIRE_LINE.search(code))


def _call_on_student_line(thread: ThreadStack, student: Frame, source: SourceReader | None) -> Wait:
    """The innermost frame is the student's: the call on that line is C code (lock.acquire, time.sleep...)."""
    code = source.line(student) if source else ""
    kernel = kernel_wait(thread.wchan)
    if kernel == "a lock, semaphore or condition" and _ACQUIRE_LINE.search(code or "") or (
        kernel is None and _ACQUIRE_LINE.search(code or "") and not _SLEEP_LINE.search(code or "")
    ):
        return Wait("acquire", "waiting to acquire a lock", student)
    if kernel == "a sleep to end" or (kernel is None and _SLEEP_LINE.search(code or "")):
        return Wait("sleep", "sleeping", student)
    if kernel is not None:
        return Wait("blocked", f"blocked in the call on this line, waiting for {kernel}", student)
    return Wait("blocked", "blocked in the call on this line", student)


# -- the library call a thread is blocked in: one reader per library file --------------------------


def _library_wait(call: Frame | None, frames: tuple[Frame, ...]) -> Wait | None:
    """Name the blocking library call, looking at the call the student made and what is inside it."""
    if call is None:
        return None
    reader = _LIBRARY_WAITS.get(call.library)
    if reader is None and call.library.startswith("concurrent/"):
        reader = _executor_wait
    return reader(call, frames) if reader is not None else None


def _at(call: Frame) -> str:
    return f"{call.func} ({call.library}, line {call.line})"


def _process_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    if call.short_func() == "join":
        return Wait("join", f"waiting in join() for a child process to end [{_at(call)}]", call)
    return None


def _threading_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    if call.short_func() == "join":
        return Wait("thread_join", f"waiting in join() for a thread to end [{_at(call)}]", call)
    return _sync_wait(call, frames)


def _pool_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    name = call.short_func()
    if name.startswith("_handle_"):
        return Wait("pool_thread", "one of the pool's own helper threads", call)
    if name in ("join", "close", "terminate"):
        return Wait("join", f"waiting for the pool's workers to end [{_at(call)}]", call)
    if name == "worker":
        inside = frames[: frames.index(call) + 1] if call in frames else frames
        if any(f.short_func() == "get" for f in inside):
            return Wait("idle_worker", "pool worker waiting for its next task", call)
        return None
    return Wait("pool_wait", f"waiting for results from the pool's workers [{_at(call)}]", call)


def _queue_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    name = call.short_func()
    if name == "get":
        return Wait("get", f"waiting in get() for the next item on a queue [{_at(call)}]", call)
    if name == "put":
        return Wait("put", f"waiting in put() for room on a full queue [{_at(call)}]", call)
    if name in ("join", "join_thread"):
        return Wait("join", f"waiting in {name}() [{_at(call)}]", call)
    return None


def _connection_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    name = call.short_func()
    if name.startswith("recv") or name == "poll":
        return Wait("recv", f"waiting in {name}() for data from a pipe [{_at(call)}]", call)
    if name.startswith("send"):
        return Wait("send", f"blocked in {name}(): the pipe is full and the other end is not receiving [{_at(call)}]",
                    call)
    return None


def _sync_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    name = call.short_func()
    if name in ("acquire", "__enter__"):
        return Wait("acquire", f"waiting to acquire a lock [{_at(call)}]", call)
    if name in ("wait", "wait_for"):
        return Wait("sync_wait", f"waiting in {call.func}() [{_at(call)}]", call)
    return None


def _executor_wait(call: Frame, frames: tuple[Frame, ...]) -> Wait | None:
    return Wait("pool_wait", f"waiting in {call.func}() [{_at(call)}]", call)


_LIBRARY_WAITS: dict[str, Callable[[Frame, tuple[Frame, ...]], Wait | None]] = {
    "multiprocessing/process.py": _process_wait,
    "threading.py": _threading_wait,
    "multiprocessing/pool.py": _pool_wait,
    "multiprocessing/queues.py": _queue_wait,
    "queue.py": _queue_wait,
    "multiprocessing/connection.py": _connection_wait,
    "multiprocessing/synchronize.py": _sync_wait,
    "multiprocessing/managers.py": _executor_wait,
}


def cpu_words(thread: ThreadStack, process: ProcessStack) -> str:
    """`` (it used 0.28 s of CPU in the 0.30 s it was watched)``, or nothing when CPU was not measured."""
    cpu = thread.cpu if thread.cpu is not None else process.cpu
    if cpu is None or not process.window:
        return ""
    return f" (it used {cpu:.2f} s of CPU in the {process.window:.2f} s it was watched)"


# -- the student's source lines -------------------------------------------------------------


class SourceReader:
    """Source lines of the student's files, read from the submission on the trusted side.

    A frame's file name comes from the student's process, so it is never a path to follow:
    only a file of the submission itself is read, named by a plain relative path (no ``..``,
    no absolute path, no empty part), reached without passing a symbolic link, and a
    regular file of at most :data:`MAX_SOURCE_BYTES`. Anything else gives no source line.
    """

    def __init__(self, module_path: Path | None, module_file: str, work_dir: str | None) -> None:
        self.module_path = module_path
        self.module_file = module_file
        self.work_dir = work_dir
        self._cache: dict[str, list[str]] = {}

    def _file_for(self, frame: Frame) -> Path | None:
        if self.module_path is None:
            return None
        path = frame.file.replace("\\", "/")
        work = (self.work_dir or "").rstrip("/") + "/"
        rel = path[len(work) :] if self.work_dir and path.startswith(work) else frame.basename
        if rel == self.module_file:
            return self.module_path
        parts = rel.split("/")
        if self.module_path.name != self.module_file or any(part in ("", ".", "..") for part in parts):
            return None
        return _inside(self.module_path.parent, parts)

    def line(self, frame: Frame) -> str:
        target = self._file_for(frame)
        if target is None:
            return ""
        key = str(target)
        if key not in self._cache:
            self._cache[key] = _read_source(target).splitlines()
        lines = self._cache[key]
        return lines[frame.line - 1].strip()[:200] if 0 < frame.line <= len(lines) else ""

    def rel(self, frame: Frame) -> str:
        path = frame.file.replace("\\", "/")
        if self.work_dir and path.startswith(self.work_dir.rstrip("/") + "/"):
            return path[len(self.work_dir.rstrip("/")) + 1 :]
        return frame.basename


def _inside(root: Path, parts: list[str]) -> Path | None:
    """``root/parts...`` if every step is a real folder (no symbolic link) and the last a regular file."""
    path = root
    for i, part in enumerate(parts):
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return None
        wanted = stat.S_ISREG(mode) if i == len(parts) - 1 else stat.S_ISDIR(mode)
        if not wanted:
            return None
    return path


def _read_source(path: Path) -> str:
    """The text of a regular file of the submission, never through a link, at most MAX_SOURCE_BYTES; else ``""``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SOURCE_BYTES:
            return ""
        data = os.read(fd, MAX_SOURCE_BYTES + 1)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return data[:MAX_SOURCE_BYTES].decode("utf-8", errors="replace")
