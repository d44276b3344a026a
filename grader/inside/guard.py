"""An audit hook that keeps the student's code away from the evidence and the probes.

Runs on the untrusted side, in every process of a sandbox: the boot script
installs it before anything else (before the probes, before the student's
module is imported), and ``sys.addaudithook`` cannot be undone. For the audit
events that reach the grader's machinery (opening, renaming or deleting files
of the sandbox's output or support folders, ``/proc/self/fd``, frame walks,
``gc`` object scans, raw memory through ``ctypes``, trace and profile hooks,
patching the classes of ``threading`` and ``multiprocessing``, starting other
programs) it decides who asked: the innermost frame that belongs either to the
student's files (the sandbox's ``work`` folder) or to the grader's own code
(its ``support`` folder). Only the student's requests are refused (the
operation raises ``PermissionError``) and recorded as a ``tamper`` event that
the trusted side turns into an integrity flag; the probes, the runner, the
drivers and the standard library acting on their own go through.

A frame's file name is a claim, not a proof (``compile`` can give code any
name), so compiling code under a name in the support folder is refused too.
This is a tripwire that makes forging costly and visible, not a wall: the
trusted side never believes the evidence because this hook ran.
"""

from __future__ import annotations

import os
import sys
import threading

from . import events

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

VERBS = {"open": "opens a file of", "os.rename": "renames a file into or out of", "os.remove": "deletes a file of",
         "os.truncate": "truncates a file of", "os.listdir": "lists", "os.scandir": "lists", "os.chdir": "changes into"}
PATH_EVENTS = frozenset({
    "open", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.link", "os.symlink", "os.chmod",
    "os.chown", "os.utime", "os.listdir", "os.scandir", "os.chdir", "shutil.copyfile", "shutil.copymode",
    "shutil.copystat", "shutil.move", "shutil.rmtree", "os.mkdir",
})
"""Events whose first argument(s) are paths: refused when a path is the grader's."""
CALLER_EVENTS = frozenset({
    "sys._getframe", "sys._current_frames", "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.dlsym/handle", "ctypes.addressof", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.cdata", "ctypes.call_function", "sys.settrace", "sys.setprofile",
    "sys.addaudithook", "object.__getattr__", "object.__setattr__", "object.__delattr__",
})
"""Events refused whenever the student's code itself makes them (whatever the arguments, unless filtered below)."""
PROGRAM_EVENTS = frozenset({"os.system", "os.exec", "os.posix_spawn", "os.spawn", "subprocess.Popen", "pty.spawn"})
"""Starting another program (which no audit hook watches) from the student's code."""
SOCKET_EVENTS = frozenset({"socket.connect", "socket.sendto", "socket.sendmsg"})
"""Reaching a Unix socket by its path: the evidence stream's is the grader's."""
CODE_EVENTS = frozenset({"compile", "code.__new__"})
"""Making code under a file name of the grader's support folder."""
FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
GUARDED_MODULES = ("threading", "_thread", "multiprocessing", "queue", "grader_inside", "grader_boot", "grader_drivers")
TRANSPARENT = ("inspect.py", "traceback.py", os.sep + "ctypes" + os.sep)
"""Standard-library code a student can ask to make a guarded call on their behalf (skipped to find who asked)."""
MAX_RECORDED = 20

_state: dict[str, Any] = {"work": ("\0",), "support": ("\0",), "out": "\0", "installed": False, "recorded": 0, "fds": ()}
_busy = threading.local()
probe_walk = threading.local()
"""``probe_walk.on`` is true while a probe of this thread walks the frames above it to find the student's line
(:func:`grader_inside.probe_locks._site`): the frame and code reads of that walk (:data:`WALK_EVENTS`) are the
grader's and are let through without looking for who asked. The walk runs no student code, and every other event
is judged as usual. A handler of a signal the student's code set up, run between two steps of the walk, would walk
frames unrefused, as it would while the hook itself looks for who asked (``_busy``)."""


def _owner(filename: str) -> str:
    """``student``, ``grader`` or ``other`` for a code object's file name."""
    if filename.startswith(_state["work"]):
        return "student"
    if filename.startswith(_state["support"]):
        return "grader"
    return "other"


PAIR_EVENTS = frozenset({"os.rename", "os.link", "os.symlink", "shutil.copyfile", "shutil.move", "shutil.copymode",
                         "shutil.copystat"})
"""Path events with two paths (source and destination)."""


def _asker(direct: bool) -> tuple[str, str, int]:
    """Who made the current audit event: (owner, file, line) of the frame that decides.

    ``direct``: the first frame outside :data:`TRANSPARENT` code decides (a
    standard-library module acting for itself is not the student, even when the
    student called it). Otherwise the innermost frame of the student or of the
    grader decides (the standard library is looked through).
    """
    frame: Any = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename or ""
        owner = _owner(filename)
        if owner == "student":
            return owner, os.path.basename(filename), frame.f_lineno
        if owner == "grader":
            return owner, "", frame.f_lineno  # let through: its file is never reported
        if direct and not any(mark in filename for mark in TRANSPARENT):
            return "other", filename, frame.f_lineno
        frame = frame.f_back
    return "other", "", 0


def _protected(path: Any) -> str | None:
    """Why ``path`` is the grader's (a short phrase), or ``None``."""
    if isinstance(path, int):
        return "the evidence file's descriptor" if path in _state["fds"] else None
    try:
        text = os.fsdecode(path)
    except (TypeError, ValueError):
        return None
    real = os.path.realpath(text)
    if real == _state["out"] or real.startswith(_state["out"] + os.sep):
        return "the grader's output folder (evidence and results)"
    if (real + os.sep).startswith(_state["support"]):
        return "the grader's support code"
    parts = real.split(os.sep)
    if len(parts) >= 4 and parts[1] == "proc" and parts[3] in ("fd", "fdinfo", "mem", "map_files"):
        return "another process's or this process's open files or memory"
    if real.startswith("/dev/fd"):
        return "this process's open files"
    return None


def _judge(event: str, args: tuple[Any, ...]) -> str | None:
    """The reason to refuse ``event``, or ``None`` to let it through."""
    if event in PATH_EVENTS:
        paths = args[:2] if event in PAIR_EVENTS else args[:1]
        if event != "open" and paths and isinstance(paths[0], int):
            return None  # a descriptor (os.listdir(fd), ...): only opening the evidence's one is refused
        why = next((w for w in (_protected(a) for a in paths if a is not None) if w), None)
        if why is None:
            return None
        return f"{VERBS.get(event, 'uses ' + event + ' on')} {why}"
    if event == "object.__getattr__":
        return f"reads {args[1]} (a frame)" if len(args) > 1 and args[1] in FRAME_ATTRIBUTES else None
    if event in ("object.__setattr__", "object.__delattr__"):
        module = getattr(args[0], "__module__", "") if args else ""
        if isinstance(module, str) and module.split(".")[0] in GUARDED_MODULES:
            name = getattr(args[0], "__name__", "?")
            return f"changes {module}.{name}.{args[1] if len(args) > 1 else '?'}"
        return None
    if event in CODE_EVENTS:
        name = args[1] if len(args) > 1 else ""
        if isinstance(name, (str, bytes)) and _protected(name):
            return f"makes code named after the grader's file {os.fsdecode(name)!r}"
        return None
    if event in PROGRAM_EVENTS:
        return "starts another program"
    if event in SOCKET_EVENTS:
        address = args[1] if len(args) > 1 else None
        why = _protected(address) if isinstance(address, (str, bytes)) else None
        return f"connects to a socket of {why}" if why else None
    if event == "import":
        name = args[0] if args and isinstance(args[0], str) else ""
        return f"imports the grader's module {name}" if name.split(".")[0] in GUARDED_MODULES[4:] else None
    return f"calls {event}"


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _WATCHED:
        return
    if event == "object.__getattr__" and (len(args) < 2 or args[1] not in FRAME_ATTRIBUTES):
        return  # f_code, __code__...: read at every access the probes record, and never refused (see _judge)
    if getattr(_busy, "on", False):
        return
    if event in WALK_EVENTS and getattr(probe_walk, "on", False):
        return  # a probe finding the student's line: the only cost of most accesses it records
    _busy.on = True
    try:
        if event in _ANY_ARGUMENTS:  # the probes' frame walks: who asked decides alone, so it is found first
            owner, file, line = _asker(direct=True)
            if owner != "student":
                return
            why = f"calls {event}"
        else:
            judged = _judge(event, args)
            if judged is None:
                return
            why = judged
            owner, file, line = _asker(direct=event in CALLER_EVENTS or event in CODE_EVENTS)
            if owner != "student":
                return
        _note(event, why, file, line)
    finally:
        _busy.on = False
    raise PermissionError(f"the grader's sandbox refused this: your code {why} ({file} line {line})")


def _note(event: str, why: str, file: str, line: int) -> None:
    if _state["recorded"] >= MAX_RECORDED:
        return
    _state["recorded"] += 1
    record = _state.get("record")
    if record is not None:
        record(events.TAMPER, audit=event, why=why[:300], file=file[:200], line=line)


_WATCHED = PATH_EVENTS | CALLER_EVENTS | PROGRAM_EVENTS | CODE_EVENTS | SOCKET_EVENTS | {"import"}
WALK_EVENTS = frozenset({"sys._getframe", "object.__getattr__"})
"""The audit events of a frame walk: getting a frame, and reading its ``f_code`` or ``f_back``."""
_ANY_ARGUMENTS = CALLER_EVENTS - {"object.__getattr__", "object.__setattr__", "object.__delattr__"}
"""Events :func:`_judge` refuses whatever their arguments: only who made them decides."""


def protect_fd(fd: int) -> None:
    """Refuse the student's ``open(fd)`` of this descriptor (the evidence file's)."""
    _state["fds"] = (*_state["fds"], fd)


def install(work_dir: str, support_dir: str, out_dir: str, record: Any) -> None:
    """Install the audit hook in this process (once; it stays until the process ends)."""
    _state.update(
        work=(os.path.realpath(work_dir) + os.sep, os.path.abspath(work_dir) + os.sep),
        support=(os.path.realpath(support_dir) + os.sep, os.path.abspath(support_dir) + os.sep),
        out=os.path.realpath(out_dir),
        record=record,
    )
    if not _state["installed"]:
        _state["installed"] = True
        sys.addaudithook(_hook)
