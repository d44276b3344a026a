"""Turn the stack dumps of a hung sandbox into feedback a student can act on.

When a run times out, the sandbox asks every process of the tree for a
``faulthandler`` dump of all its threads before killing it. This module parses
those dumps, keeps for each thread the innermost frame in the student's own
files (with the source line), and names the library call it was blocked in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .evidence import Run

__all__ = ["Frame", "ThreadStack", "describe_hang", "parse_faulthandler"]

_THREAD = re.compile(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<func>\S+)')


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str

    @property
    def basename(self) -> str:
        return self.file.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def in_sandbox_work(self) -> bool:
        return "/work/" in self.file.replace("\\", "/")


@dataclass(frozen=True)
class ThreadStack:
    thread: str
    current: bool
    frames: tuple[Frame, ...]  # innermost first, as faulthandler prints them

    def student_frame(self) -> Frame | None:
        for frame in self.frames:
            if frame.in_sandbox_work:
                return frame
        return None

    def blocking_call(self) -> Frame | None:
        """The innermost frame outside the student's files (the library call it waits in)."""
        return self.frames[0] if self.frames and not self.frames[0].in_sandbox_work else None


def parse_faulthandler(text: str) -> list[ThreadStack]:
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
            frames.append(Frame(frame.group("file"), int(frame.group("line")), frame.group("func")))
    if name is not None:
        threads.append(ThreadStack(name, current, tuple(frames)))
    return threads


def _source_line(source_dir: Path | None, frame: Frame) -> str:
    if source_dir is None:
        return ""
    candidate = source_dir / frame.basename if source_dir.is_dir() else source_dir
    if source_dir.is_file() and frame.basename != source_dir.name:
        # a single-file submission is run under the assignment's module name
        candidate = source_dir
    try:
        lines = candidate.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return lines[frame.line - 1].strip() if 0 < frame.line <= len(lines) else ""


def _library_name(frame: Frame) -> str:
    path = frame.file.replace("\\", "/")
    for marker in ("/multiprocessing/", "/concurrent/"):
        if marker in path:
            return marker.strip("/") + "/" + path.split(marker, 1)[1]
    return frame.basename


def describe_hang(run: Run, module_path: Path | None) -> str:
    """Where every process of a timed-out run was blocked, in words."""
    source = module_path if module_path is None or module_path.is_file() else module_path.parent
    if module_path is not None and module_path.is_file() and module_path.parent.is_dir():
        source = module_path
    stacks = run.stacks
    if not stacks:
        return "The grader could not read where the processes were blocked (no stack dump arrived before the kill)."
    names: dict[int, str] = {run.main_pid: "main process"}
    for child in run.child_processes():
        target = f", target {child.target.rsplit('.', 1)[-1]}" if child.target else ""
        names[child.pid] = f"child process {child.name}{target}"
    lines = ["Where each process was when the time ran out:"]
    for pid in sorted(stacks, key=lambda p: (p != run.main_pid, p)):
        label = names.get(pid, "process")
        threads = parse_faulthandler(stacks[pid])
        for stack in threads:
            student = stack.student_frame()
            if student is None and not stack.current:
                continue
            who = f"{label} (pid {pid})" + ("" if stack.current else f", thread {stack.thread}")
            if student is None:
                inner = stack.frames[0] if stack.frames else None
                where = f"in {inner.func} ({_library_name(inner)}, line {inner.line})" if inner else "(no Python frames)"
                lines.append(f"- {who}: not in your code, {where}")
                continue
            code = _source_line(source, student)
            text = f"- {who}: {student.basename}, line {student.line}, in {student.func}"
            if code:
                text += f": {code}"
            blocked = stack.blocking_call()
            if blocked is not None:
                text += f"\n    waiting in {blocked.func} ({_library_name(blocked)})"
            lines.append(text)
    return "\n".join(lines)
