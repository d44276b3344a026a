"""Turn the stacks of a hung sandbox into feedback a student can act on.

When a run times out, or the student's code returns while processes it started
are still running, the sandbox reads where every process was before killing it
(:mod:`grader.sandbox.stacks`: py-spy from outside, else a ``faulthandler`` dump). This
module reads those stacks together with the recorded evidence (which process
started and joined which, what each process is) and writes:

- a **diagnosis** in plain words when the stacks show a classic pattern: a
  consumer waiting for a sentinel that never comes, a parent joining a child
  that is still flushing a queue nobody reads (join before drain), both ends
  of a pipe in ``send()``, processes waiting for a lock nobody releases, a
  child that does not stop on the stop message, a loop that never ends;
- one **section per process**: its role (main process, child ``Process-2``
  running ``consumer``), what it was doing, and for each thread the student's
  frames (file, line, function and the source line) and the library call it
  was blocked in.

The text format (what :attr:`grader.model.results.CheckResult.diagnostics` holds) is
documented in ``docs/diagnostics.md``; :func:`split_sections` reads it back for
exporters that render sections separately (HTML).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.sandbox.readback import Refused, read_back

if TYPE_CHECKING:
    from grader.evidence.run import Run

__all__ = [
    "Finding",
    "Frame",
    "ProcessStack",
    "Report",
    "ThreadStack",
    "Wait",
    "analyse",
    "describe_hang",
    "describe_leftovers",
    "parse_faulthandler",
    "parse_stack",
    "split_sections",
]

IDLE_SHARE = 0.01  # below this share of a CPU while watched, a thread was not running
CLOCK_TICK = 0.01  # the kernel counts CPU time in ticks of 1/USER_HZ (100 Hz)
BUSY_SHARE = 0.1
MAX_SECTIONS = 12
MAX_THREADS_SHOWN = 6
MAX_STUDENT_FRAMES = 6
MAX_SOURCE_BYTES = 2 * 1024 * 1024
SECTION = re.compile(r"^== (?P<title>.*) ==$")

_THREAD = re.compile(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<func>\S+)')
_ACQUIRE_LINE = re.compile(r"\.acquire\s*\(|^\s*(async\s+)?with\b")
_SLEEP_LINE = re.compile(r"\bsleep\s*\(")


# -- stacks -----------------------------------------------------------------------


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
    def in_sandbox_work(self) -> bool:
        return self.owner == "student"

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
    """What was read of one process."""

    pid: int
    threads: tuple[ThreadStack, ...]
    via: str | None = None
    error: str | None = None
    ppid: int | None = None
    name: str = ""
    cpu: float | None = None
    window: float | None = None


def parse_faulthandler(text: str, work_dir: str | None = None, support_dir: str | None = None) -> list[ThreadStack]:
    """Parse a ``faulthandler.dump_traceback(all_threads=True)`` dump."""
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
        if frame and name is not None:
            file = frame.group("file")
            owner = _owner(file, work_dir, support_dir)
            frames.append(Frame(file, int(frame.group("line")), frame.group("func"), owner))
    if name is not None:
        threads.append(ThreadStack(name, current, tuple(frames)))
    return threads


def _owner(file: str, work_dir: str | None, support_dir: str | None) -> str:
    path = file.replace("\\", "/")
    if work_dir is not None:
        if path.startswith(work_dir.rstrip("/") + "/"):
            return "student"
        if support_dir is not None and path.startswith(support_dir.rstrip("/") + "/"):
            return "grader"
        return "library"
    # an old plain-text dump: no folders known, guess from the sandbox layout
    if "/support/grader_inside/" in path or path.endswith("/grader_boot.py"):
        return "grader"
    return "student" if "/work/" in path else "library"


def parse_stack(pid: int, data: str) -> ProcessStack:
    """One process's stack as the sandbox stored it (a :mod:`grader.sandbox.stacks` document, or a plain dump)."""
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return ProcessStack(pid, tuple(parse_faulthandler(data)), via="faulthandler")
    work = doc.get("work_dir") if isinstance(doc.get("work_dir"), str) else None
    support = doc.get("support_dir") if isinstance(doc.get("support_dir"), str) else None
    threads = []
    for raw in doc.get("threads", []):
        if not isinstance(raw, dict):
            continue
        frames = tuple(
            Frame(str(f.get("file", "?")), int(f["line"]), str(f.get("func", "?")),
                  _owner(str(f.get("file", "")), work, support))
            for f in raw.get("frames", [])
            if isinstance(f, dict) and type(f.get("line")) is int
        )
        threads.append(
            ThreadStack(
                thread=str(raw.get("id", "?")),
                current=bool(raw.get("current", False)),
                frames=frames,
                name=str(raw.get("name") or ""),
                active=raw.get("active") if isinstance(raw.get("active"), bool) else None,
                cpu=_number(raw.get("cpu")),
                wchan=str(raw["wchan"]) if isinstance(raw.get("wchan"), str) else None,
            )
        )
    window = _number(doc.get("window"))
    return ProcessStack(
        pid=pid,
        threads=tuple(threads),
        via=doc.get("via") if isinstance(doc.get("via"), str) else None,
        error=str(doc["error"]) if doc.get("error") else None,
        ppid=doc.get("ppid") if type(doc.get("ppid")) is int else None,
        name=str(doc.get("name") or ""),
        cpu=_number(doc.get("cpu")),
        window=window if window is not None and window > 0 else None,
    )


def _number(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


# -- what each thread waits for ---------------------------------------------------------


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
    student = thread.student_frame()
    # the call the student's code made; in a thread without student code, the first call that says something
    candidates = [thread.blocking_call()] if student is not None else list(reversed(frames))
    for call in candidates:
        found = _library_wait(call, frames)
        if found is not None:
            return found
    call = thread.blocking_call()
    if _busy(thread, process):
        where = student or frames[0]
        return Wait("busy", "running, not waiting" + _cpu_words(thread, process), where)
    if student is not None and frames[0].owner == "student":
        # the innermost frame is the student's: the call on that line is C code (lock.acquire, time.sleep...)
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
    inner = frames[0]
    kernel = kernel_wait(thread.wchan)
    text = f"waiting in {inner.short_func()} ({inner.library}, line {inner.line})"
    return Wait("blocked", text + (f", for {kernel}" if kernel else ""), call or inner)


def _library_wait(call: Frame | None, frames: tuple[Frame, ...]) -> Wait | None:
    """Name the blocking library call, looking at the call the student made and what is inside it."""
    if call is None:
        return None
    inside = frames[: frames.index(call) + 1] if call in frames else frames
    name = call.short_func()
    lib = call.library
    where = f"{call.func} ({lib}, line {call.line})"
    if lib == "multiprocessing/process.py" and name == "join":
        return Wait("join", f"waiting in join() for a child process to end [{where}]", call)
    if lib == "threading.py" and name == "join":
        return Wait("thread_join", f"waiting in join() for a thread to end [{where}]", call)
    if lib == "multiprocessing/pool.py":
        if name.startswith("_handle_"):
            return Wait("pool_thread", "one of the pool's own helper threads", call)
        if name in ("join", "close", "terminate"):
            return Wait("join", f"waiting for the pool's workers to end [{where}]", call)
        if name == "worker":
            if any(f.short_func() == "get" for f in inside):
                return Wait("idle_worker", "pool worker waiting for its next task", call)
            return None
        return Wait("pool_wait", f"waiting for results from the pool's workers [{where}]", call)
    if lib == "multiprocessing/queues.py" or lib == "queue.py":
        if name == "get":
            return Wait("get", f"waiting in get() for the next item on a queue [{where}]", call)
        if name == "put":
            return Wait("put", f"waiting in put() for room on a full queue [{where}]", call)
        if name in ("join", "join_thread"):
            return Wait("join", f"waiting in {name}() [{where}]", call)
    if lib == "multiprocessing/connection.py":
        if name.startswith("recv") or name == "poll":
            return Wait("recv", f"waiting in {name}() for data from a pipe [{where}]", call)
        if name.startswith("send"):
            return Wait("send", f"blocked in {name}(): the pipe is full and the other end is not receiving [{where}]",
                        call)
    if lib in ("multiprocessing/synchronize.py", "threading.py"):
        if name in ("acquire", "__enter__"):
            return Wait("acquire", f"waiting to acquire a lock [{where}]", call)
        if name in ("wait", "wait_for"):
            return Wait("sync_wait", f"waiting in {call.func}() [{where}]", call)
    if lib == "multiprocessing/managers.py" or lib.startswith("concurrent/"):
        return Wait("pool_wait", f"waiting in {call.func}() [{where}]", call)
    return None


def _cpu_words(thread: ThreadStack, process: ProcessStack) -> str:
    cpu = thread.cpu if thread.cpu is not None else process.cpu
    if cpu is None or not process.window:
        return ""
    return f" (it used {cpu:.2f} s of CPU in the {process.window:.2f} s it was watched)"


# -- the student's source lines -------------------------------------------------------------


class SourceReader:
    """Source lines of the student's files, read from the submission on the trusted side."""

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
        if ".." in rel.split("/") or self.module_path.name != self.module_file:
            return None
        return self.module_path.parent / rel

    def line(self, frame: Frame) -> str:
        target = self._file_for(frame)
        if target is None:
            return ""
        key = str(target)
        if key not in self._cache:
            try:  # plain files only, bounded: a submission may hold a link or a FIFO
                data = read_back(target, MAX_SOURCE_BYTES, what="a source file").data
                self._cache[key] = data.decode("utf-8", "replace").splitlines()
            except (Refused, OSError):
                self._cache[key] = []
        lines = self._cache[key]
        return lines[frame.line - 1].strip()[:200] if 0 < frame.line <= len(lines) else ""

    def rel(self, frame: Frame) -> str:
        path = frame.file.replace("\\", "/")
        if self.work_dir and path.startswith(self.work_dir.rstrip("/") + "/"):
            return path[len(self.work_dir.rstrip("/")) + 1 :]
        return frame.basename


def _work_dir(stacks: dict[int, str]) -> str | None:
    for data in stacks.values():
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("work_dir"), str):
            return str(doc["work_dir"])
    return None


# -- the analysis ------------------------------------------------------------------------------


@dataclass
class ProcessView:
    """A process as the analysis sees it: what it is, what it was doing."""

    pid: int
    label: str
    stack: ProcessStack
    waits: list[tuple[ThreadStack, Wait]]
    parent: int | None = None

    @property
    def main(self) -> tuple[ThreadStack, Wait] | None:
        """The thread that says most about the process: one in the student's code, else its main thread."""
        for thread, wait in self.waits:
            if thread.student_frame() is not None and wait.kind not in ("feeder", "feeder_idle"):
                return thread, wait
        for thread, wait in self.waits:
            if thread.name == "MainThread" or thread.current:
                return thread, wait
        return self.waits[0] if self.waits else None

    def kinds(self) -> set[str]:
        return {wait.kind for _, wait in self.waits}

    def threads_of(self, *kinds: str) -> list[tuple[ThreadStack, Wait]]:
        return [(t, w) for t, w in self.waits if w.kind in kinds]


@dataclass(frozen=True)
class Finding:
    """One diagnosis: a short title (``join before drain``) and an explanation for the student."""

    title: str
    text: str


@dataclass
class Report:
    """The diagnosis of a run and one section per process, renderable as text."""

    heading: str
    findings: list[Finding] = field(default_factory=list)
    sections: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        parts = []
        for finding in self.findings:
            parts.append(f"Likely cause ({finding.title}): {finding.text}")
        if not self.findings and self.sections:
            parts.append("No known deadlock pattern was recognised; the sections below show where each process was.")
        parts.append(self.heading)
        parts.extend(self.notes)
        text = "\n\n".join(parts)
        for title, body in self.sections:
            text += f"\n\n== {title} ==\n" + "\n".join(f"  {line}" if line else "" for line in body)
        return text


def split_sections(diagnostics: str) -> tuple[str, list[tuple[str, str]]]:
    """Read back a rendered diagnosis: the text before the first section, and (title, body) per process."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in diagnostics.splitlines():
        match = SECTION.match(line)
        if match:
            sections.append((match.group("title"), []))
        elif sections:
            sections[-1][1].append(line[2:] if line.startswith("  ") else line)
        else:
            head.append(line)
    return "\n".join(head).strip(), [(title, "\n".join(body).strip("\n")) for title, body in sections]


def _short_target(target: str | None) -> str:
    return target.rsplit(".", 1)[-1] if target else ""


def _labels(run: Run) -> tuple[dict[int, str], dict[int, int], dict[int, Any]]:
    labels: dict[int, str] = {run.main_pid: "main process"}
    parents: dict[int, int] = {}
    children: dict[int, Any] = {}
    for child in run.child_processes():
        target = _short_target(child.target)
        labels[child.pid] = f"child {child.name}" + (f" ({target})" if target else "")
        parents[child.pid] = child.parent
        children[child.pid] = child
    return labels, parents, children


def _where(frame: Frame | None, source: SourceReader) -> str:
    """``file.py, line 12 (`code`)`` for a student's frame."""
    if frame is None:
        return ""
    text = f"{source.rel(frame)}, line {frame.line}"
    code = source.line(frame)
    return f"{text} (`{code}`)" if code else text


def analyse(
    run: Run, module_path: Path | None, pids: Iterable[int] | None = None
) -> tuple[list[ProcessView], SourceReader]:
    """Parse and classify the stacks of ``run`` (of ``pids`` only, if given)."""
    raw = run.stacks
    wanted = set(raw) if pids is None else set(pids) & set(raw)
    source = SourceReader(module_path, run.module_file, _work_dir(raw))
    labels, parents, _ = _labels(run)
    views = []
    for pid in sorted(wanted, key=lambda p: (p != run.main_pid, p)):
        stack = parse_stack(pid, raw[pid])
        label = labels.get(pid) or (f"process {stack.name}" if stack.name else "process")
        waits = [(thread, classify(thread, stack, source)) for thread in stack.threads]
        views.append(ProcessView(pid, label, stack, waits, parents.get(pid, stack.ppid)))
    return views, source


def _find_patterns(run: Run, views: list[ProcessView], source: SourceReader) -> list[Finding]:
    by_pid = {v.pid: v for v in views}
    labels, parents, children = _labels(run)
    alive = set(by_pid)
    findings: list[Finding] = []

    def name(pid: int) -> str:
        view = by_pid.get(pid)
        label = view.label if view else labels.get(pid, "process")
        return f"the {label} (pid {pid})"

    def first(view: ProcessView, *kinds: str) -> tuple[ThreadStack, Wait] | None:
        found = view.threads_of(*kinds)
        return found[0] if found else None

    def at(thread: ThreadStack) -> str:
        where = _where(thread.student_frame(), source)
        return f" at {where}" if where else ""

    def joined_child(parent: ProcessView, prefer: Iterable[int]) -> int | None:
        mine = [pid for pid in alive if parents.get(pid) == parent.pid or by_pid[pid].stack.ppid == parent.pid]
        for pid in prefer:
            if pid in mine:
                return pid
        return mine[0] if len(mine) == 1 else None

    # a process still starting up uses the CPU too: only a busy thread in the student's code counts
    busy = [(v, t, w) for v in views for t, w in v.waits if w.kind == "busy" and t.student_frame() is not None]
    joiners = [v for v in views if first(v, "join")]

    # join before drain: a child that has returned cannot end until its queued items are read
    exiting = [v for v in views if v.kinds() & {"exiting", "feeder"} and not any(
        t.student_frame() is not None and w.kind not in ("feeder", "feeder_idle") for t, w in v.waits)]
    for child in exiting:
        joiner = next((j for j in joiners if joined_child(j, [child.pid]) == child.pid), None)
        if joiner is not None:
            thread, _ = first(joiner, "join") or (None, None)
            findings.append(Finding(
                "join before drain",
                f"{name(joiner.pid)} waits in join(){at(thread) if thread else ''} for {name(child.pid)} to end. "
                f"That child has finished its code, but a process that put items on a multiprocessing.Queue ends "
                f"only after those items have been written into the queue's pipe, and the pipe takes them only as "
                f"fast as someone reads the queue. Nobody reads it while the parent waits in join(), so both wait "
                f"forever (this shows with large or many items). Take every item off the queue (up to the sentinel) "
                f"first, then join() the process.",
            ))
        else:
            findings.append(Finding(
                "queue never drained",
                f"{name(child.pid)} has finished its code but cannot end: items it put on a multiprocessing.Queue "
                f"are still waiting to be written into the queue's pipe, and no process reads that queue. Make sure "
                f"every item put on a queue is taken off it.",
            ))

    # both ends of a pipe sending, nobody receiving
    senders = [(v, t) for v in views for t, w in v.waits if w.kind == "send"]
    if len({v.pid for v, _ in senders}) >= 2:
        listed = " and ".join(f"{name(v.pid)}{at(t)}" for v, t in senders[:3])
        findings.append(Finding(
            "both ends sending",
            f"{listed} are {'both' if len(senders) == 2 else 'all'} blocked in send() and no process is receiving. "
            f"A pipe holds only about 64 KiB: "
            f"sending a larger message blocks until the other end calls recv(). When both ends send before they "
            f"receive, each waits for the other forever. Receive each reply before sending the next message "
            f"(or receive in another thread).",
        ))
    elif senders and not any(w.kind == "recv" for v in views for _, w in v.waits):
        view, thread = senders[0]
        findings.append(Finding(
            "nobody receiving",
            f"{name(view.pid)} is blocked in send(){at(thread)}: the pipe is full and no process is receiving "
            f"from its other end. A pipe holds only about 64 KiB; the other end must call recv().",
        ))

    # busy: a loop that never ends
    for view, thread, _ in busy[:2]:
        where = at(thread)
        findings.append(Finding(
            "loop that never ends",
            f"{name(view.pid)} was running, not waiting{where}{_cpu_words(thread, view.stack)}: a loop whose exit "
            f"condition never becomes true. Polling (empty(), qsize(), a flag, a counter) instead of blocking in "
            f"get(), recv() or join() often does this, and so does a stop condition the other process never meets.",
        ))

    # lock never released
    waiters = [(v, t) for v in views for t, w in v.waits if w.kind == "acquire"]
    if waiters and not busy:
        places = sorted({_where(t.student_frame(), source) for _, t in waiters} - {""})
        holders = [(v, t, w) for v in views for t, w in v.waits
                   if w.kind in ("sync_wait", "sleep", "blocked", "get", "recv") and t.student_frame() is not None]
        count = len({v.pid for v, _ in waiters})
        text = (f"{count} process{'es' if count > 1 else ''} wait{'' if count > 1 else 's'} to acquire a lock"
                + (f" at {'; '.join(places[:3])}" if places else "")
                + " and no process is running to release it.")
        if holders:
            view, thread, wait = holders[0]
            holder = name(view.pid)
            text += (f" {holder[0].upper()}{holder[1:]} may be holding it while it waits{at(thread)} "
                     f"({wait.short}). Do not wait for anything (an event, a queue, another lock) while holding a "
                     f"lock, and keep only the few lines that need the lock inside `with lock:`.")
        else:
            text += (" A lock that is acquired and not released on every path (a missing release(), or a return, "
                     "break or exception between acquire() and release()) blocks every later acquire, also a second "
                     "acquire by the same process. Use `with lock:` around the few lines that need the lock, so it "
                     "is always released.")
        findings.append(Finding("lock never released", text))

    # waiting for a message that never comes
    if not busy and not senders:
        for view in views:
            entry = first(view, "get", "recv")
            if entry is None or view.kinds() & {"idle_worker"}:
                continue
            thread, wait = entry
            what = "get()" if wait.kind == "get" else "recv()"
            parent = by_pid.get(parents.get(view.pid, -1)) if view.pid != run.main_pid else None
            ended = [pid for pid, c in children.items() if pid not in alive and pid != view.pid]
            ended_names = ", ".join(f"{labels.get(pid)} (pid {pid})" for pid in ended[:3])
            others_waiting = all(
                v.pid == view.pid or v.kinds() & {"join", "get", "recv", "acquire", "idle_worker", "exiting",
                                                  "feeder_idle", "thread_join"}
                for v in views
            )
            if not others_waiting:
                continue
            if parent is not None and first(parent, "join") is not None and ended:
                findings.append(Finding(
                    "missing sentinel",
                    f"{name(view.pid)} waits in {what}{at(thread)} for the next item, but {ended_names} already "
                    f"ended and {name(parent.pid)} waits in join(): no sentinel (stop message) is coming. The "
                    f"producer must send the sentinel after its last item, and the consumer must stop as soon as it "
                    f"receives it (compare with `is None` / `== SENTINEL`).",
                ))
            elif parent is not None and first(parent, "join") is not None:
                findings.append(Finding(
                    "child that does not stop",
                    f"{name(parent.pid)} waits in join() for {name(view.pid)}, which waits in {what}{at(thread)} for "
                    f"another message. The parent has nothing more to send, so the child must return when it "
                    f"receives the stop message (None) instead of waiting for more.",
                ))
            else:
                gone = f"{ended_names} already ended" if ended else "every other process is itself waiting"
                findings.append(Finding(
                    "missing sentinel",
                    f"{name(view.pid)} waits in {what}{at(thread)} for an item no process will send: {gone}. "
                    f"The process feeding it must send a sentinel (stop message) after the last item, and the "
                    f"receiver must stop when it gets it.",
                ))
            break

    # a pool waiting for a result while every worker is idle: a worker died with the task
    pool_waiters = [(v, t) for v in views for t, w in v.waits if w.kind == "pool_wait" and t.student_frame()]
    workers = [v for v in views if "idle_worker" in v.kinds()]
    if pool_waiters and workers and not busy and all(
        v.kinds() <= {"idle_worker", "feeder_idle", "pool_thread"} for v in workers
    ):
        view, thread = pool_waiters[0]
        dead = [pid for pid in children if pid not in alive and "PoolWorker" in labels.get(pid, "")]
        dead_names = ", ".join(f"the {labels[pid]} (pid {pid})" for pid in dead[:3])
        gone = f" Evidence: {dead_names} ended while the pool was in use." if dead else ""
        findings.append(Finding(
            "pool result that never comes",
            f"{name(view.pid)} waits for the pool's results{at(thread)}, but every worker of the pool is idle, "
            f"waiting for a new task: a result is missing and will never come. This happens when a worker process "
            f"dies while running a task (os._exit() or sys.exit() in the function, a crash, a memory limit): the "
            f"pool starts a new worker, but that task is lost and map() waits forever.{gone} Check what the function "
            f"you give the pool does with every input.",
        ))

    # a child that never ends for another reason (a loop with sleep, waiting on something else)
    if not findings:
        for joiner in joiners:
            mine = sorted(pid for pid in alive if pid != joiner.pid and (
                parents.get(pid) == joiner.pid or by_pid[pid].stack.ppid == joiner.pid))
            running = [pid for pid in mine if by_pid[pid].main is not None]
            if not running:
                continue
            child_pid = running[0]
            thread, wait = by_pid[child_pid].main  # type: ignore[misc]
            more = f" (and {len(running) - 1} more of its children)" if len(running) > 1 else ""
            findings.append(Finding(
                "child that does not end",
                f"{name(joiner.pid)} waits in join() for {name(child_pid)}{more}, which is still in its code"
                f"{at(thread)} ({wait.short}). A child ends only when its target function returns: "
                f"check the loop or the call it is stuck in.",
            ))
            break
    # the main process itself sleeping: most likely a loop around the sleep
    if not findings:
        main_view = by_pid.get(run.main_pid)
        entry = first(main_view, "sleep") if main_view is not None else None
        if main_view is not None and entry is not None:
            findings.append(Finding(
                "sleeping in a loop",
                f"{name(main_view.pid)} was sleeping{at(entry[0])} when the time ran out. A single sleep as long as "
                f"the whole time limit is unlikely: this is most often a loop around the sleep whose exit condition "
                f"never becomes true.",
            ))
    return findings


# -- rendering -----------------------------------------------------------------------------------


HIDDEN_KINDS = ("feeder_idle", "pool_thread")


def _signature(view: ProcessView) -> tuple[Any, ...]:
    return tuple(
        (w.kind, tuple((f.file, f.line) for f in t.student_frames())) for t, w in view.waits if w.kind not in HIDDEN_KINDS
    )


def _thread_lines(thread: ThreadStack, wait: Wait, source: SourceReader, many: bool) -> list[str]:
    title = thread.name or ("current thread" if thread.current else f"thread {thread.thread}")
    lines = [f"{'thread ' + title + ': ' if many else ''}{wait.text}"]
    student = thread.student_frames()
    if student:
        shown = list(reversed(student[:MAX_STUDENT_FRAMES]))
        if len(student) > MAX_STUDENT_FRAMES:
            lines.append(f"  ... {len(student) - MAX_STUDENT_FRAMES} outer frame(s) of your code not shown")
        for frame in shown:
            lines.append(f"  {source.rel(frame)}, line {frame.line}, in {frame.func}")
            code = source.line(frame)
            if code:
                lines.append(f"      {code}")
    elif wait.kind not in ("busy",):
        lines.append("  (not in your code)")
    inner = [f for f in thread.visible_frames() if f.owner == "library"]
    student_inner = student[0] if student else None
    if student_inner is not None:
        frames = thread.visible_frames()
        inner = [f for f in frames[: frames.index(student_inner)] if f.owner == "library"]
    if inner:
        # outermost first, as the calls were made; long chains keep their two ends
        names = [f"{f.short_func()} ({f.library}:{f.line})" for f in reversed(inner)]
        if len(names) > 4:
            names = names[:2] + ["..."] + names[-2:]
        lines.append(f"  in: {' -> '.join(names)}")
    kernel = kernel_wait(thread.wchan)
    if kernel and kernel not in wait.text:
        lines.append(f"  the operating system says it waits for {kernel}")
    return lines


def _sections(views: list[ProcessView], source: SourceReader) -> list[tuple[str, list[str]]]:
    groups: dict[tuple[Any, ...], list[ProcessView]] = {}
    order: list[tuple[Any, ...]] = []
    for view in views:
        key = _signature(view) if view.stack.threads and view.label.startswith("child") else ("pid", view.pid)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(view)
    sections = []
    for key in order[:MAX_SECTIONS]:
        group = groups[key]
        view = group[0]
        if len(group) > 1:
            names = ", ".join(v.label.removeprefix("child ") for v in group)
            title = f"{len(group)} child processes {names} (pids {', '.join(str(v.pid) for v in group)}): same place"
        else:
            title = f"{view.label} (pid {view.pid})"
        body: list[str] = []
        if view.stack.error or not view.stack.threads:
            body.append(f"its stack could not be read: {view.stack.error or 'no frames'}")
        else:
            main = view.main
            if main is not None:
                title += f": {main[1].short}"
            # idle queue feeder threads and the pool's helper threads say nothing about the problem
            shown = [(t, w) for t, w in view.waits if t.visible_frames() and w.kind not in HIDDEN_KINDS]
            shown.sort(key=lambda entry: (entry[0].name != "MainThread" and not entry[0].current,
                                          entry[0].student_frame() is None))
            shown = shown[:MAX_THREADS_SHOWN]
            for thread, wait in shown:
                body.extend(_thread_lines(thread, wait, source, len(view.waits) > 1))
            idle = sum(1 for _, w in view.waits if w.kind in HIDDEN_KINDS)
            hidden = len(view.waits) - len(shown) - idle
            if hidden > 0:
                body.append(f"... {hidden} more thread(s) not shown")
            if idle:
                body.append(f"({idle} idle queue feeder or pool helper thread(s) not shown)")
        sections.append((title, body))
    if len(order) > MAX_SECTIONS:
        rest = sum(len(groups[key]) for key in order[MAX_SECTIONS:])
        sections.append((f"{rest} more process(es)", ["not shown, to keep this short"]))
    return sections


def _how_read(views: list[ProcessView]) -> str:
    vias = sorted({v.stack.via for v in views if v.stack.via})
    return f" (stacks read with {' and '.join(vias)})" if vias else ""


def report_hang(run: Run, module_path: Path | None) -> Report:
    """The diagnosis of a timed-out run, as a :class:`Report`."""
    views, source = analyse(run, module_path)
    if not views:
        return Report("The grader could not read where the processes were blocked (no process could be inspected "
                      "before the kill).")
    report = Report(f"Where each process was when the time ran out{_how_read(views)}:")
    report.findings = _find_patterns(run, views, source)
    unread = [v for v in views if v.stack.error or not v.stack.threads]
    if unread:
        report.notes.append(f"The stacks of {len(unread)} process(es) could not be read; their sections say why.")
    report.sections = _sections(views, source)
    return report


def describe_hang(run: Run, module_path: Path | None) -> str:
    """Where every process of a timed-out run was blocked, and why, in words (one section per process)."""
    return report_hang(run, module_path).render()


def describe_leftovers(run: Run, module_path: Path | None) -> str:
    """Which processes were still running when the student's function returned, and where they were."""
    leftover = [int(p["pid"]) for p in run.leftovers if type(p.get("pid")) is int]
    if not leftover:
        return ""
    views, source = analyse(run, module_path, leftover)
    labels, _, _ = _labels(run)
    report = Report(f"Processes still running when {run.label} returned, stopped by the grader{_how_read(views)}:")
    names = [f"the {labels.get(pid, 'process')} (pid {pid})" for pid in leftover]
    places = []
    for view in views:
        main = view.main
        if main is not None:
            where = _where(main[0].student_frame(), source)
            label = view.label.removeprefix("child ")
            places.append(f"{label} was {main[1].short}" + (f" at {where}" if where else ""))
    text = (f"{', '.join(names[:5])}{' and others' if len(names) > 5 else ''} "
            f"{'were' if len(names) > 1 else 'was'} still running after {run.label} returned")
    text += (": " + "; ".join(places[:3]) + "." if places else ".")
    text += (" Every process you start must end and be joined before your function returns: join() each one, and "
             "make sure its code can finish (a stop message it recognises, a loop that ends).")
    report.findings = [Finding("processes left running", text)]
    missing = [pid for pid in leftover if pid not in {v.pid for v in views}]
    if missing:
        report.notes.append(f"The stacks of {len(missing)} process(es) could not be read before they were stopped.")
    report.sections = _sections(views, source)
    return report.render()
