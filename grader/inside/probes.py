"""Evidence probes installed in every Python process of a sandbox.

This module runs on the *untrusted* side: it is copied into the sandbox and
imported by the boot script in the first process and again, under ``spawn``,
in every child the student's code starts (the boot script is the children's
``__main__``). It imports nothing of the trusted ``grader`` package.

Each probe sends one JSON line per event with a single ``os.write``: on Linux
as one message of a ``SOCK_SEQPACKET`` connection to the sandbox host's evidence
stream (``evidence.sock``, which learns from the kernel which process sent it),
elsewhere appended to the evidence file on an ``O_APPEND`` descriptor; either
way lines from concurrent processes never interleave. Every event carries ``pid``, ``tid`` (thread ident)
and ``t`` (``time.monotonic()``, comparable across the processes of a machine).

Probes:
- ``output``: stdout and stderr are replaced by line recorders that write each
  complete line with one system call (so lines of concurrent processes never
  mix) and record which process and thread printed it.
- ``processes``: ``multiprocessing`` process start and join (child pid,
  target, exit code after join).
- ``threads``: ``threading.Thread`` start and join.
- ``trace``: functions of the student's module named by the scenario are
  wrapped in every process to record enter and exit of each call.
- ``stacks``: ``faulthandler`` dumps every thread's stack to a per-process file
  on ``SIGUSR1``, so the grader can show where a hung process was blocked.

Extra probes (locks, shared values, queues, pipes) live in the modules of
this package named ``probe_*.py`` and register themselves in ``PROBES`` when
imported (one module per topic); ``events.PROBE_MODULES`` names the module of
each, so a process imports only the modules of the probes it was asked for.
Probe names and event kinds are the constants of :mod:`events`, which the
trusted side imports too: it refuses an unknown probe before any sandbox
starts, so the check below only guards against a probe named in ``events``
whose module does not register it.
"""

from __future__ import annotations

import _thread
import functools
import io
import itertools
import json
import os
import sys
import threading
import time
from collections.abc import Callable

from . import events, wire

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

EVENT_LIMIT = 16 * 1024
_ids = itertools.count(1)
_numbers = threading.local()
_numbering = _thread.allocate_lock()
_numbered = 0


def thread_number() -> int:
    """1, 2, 3 ... for the threads of this process in the order they first recorded a numbered event.

    Numbered events: a traced call (``enter``) and the ``locks`` probe's. Thread idents are
    reused (a thread started after another one ended often gets its ident); the number is not, so
    the trusted side tells threads apart by ``(pid, tid, thread_no)``.
    """
    global _numbered
    number = getattr(_numbers, "number", None)
    if number is None:
        with _numbering:
            _numbered += 1
            number = _numbers.number = _numbered
    return int(number)


_getpid = os.getpid
_monotonic = time.monotonic
_get_ident = threading.get_ident
_REAL = {"os.getpid": (os, "getpid", os.getpid), "time.monotonic": (time, "monotonic", time.monotonic),
         "time.time": (time, "time", time.time), "threading.get_ident": (threading, "get_ident", threading.get_ident)}
"""Functions the evidence relies on, kept as the probes found them: the probes call these, never the module's
attribute (which the student's code could replace), and report once per process if the attribute was replaced."""


def _connect(path: str) -> int:
    """A descriptor connected to the evidence stream at ``path`` (-1 if it cannot be reached: events are lost)."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | getattr(socket, "SOCK_CLOEXEC", 0))
    folder = -1
    try:
        if len(os.fsencode(path)) > 107:  # too long for AF_UNIX: through the folder's descriptor
            folder = os.open(os.path.dirname(path), os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
            sock.connect(f"/proc/self/fd/{folder}/{os.path.basename(path)}")
        else:
            sock.connect(path)
    except OSError:
        sock.close()
        return -1
    finally:
        if folder >= 0:
            os.close(folder)
    return sock.detach()


class Recorder:
    """Sends evidence events to the sandbox host's evidence stream, or appends them to the evidence file.

    Every event carries ``seq``: 1, 2, 3 ... in each process, taken with the
    time and written under one lock, so the trusted side can tell a line
    written by someone else, a line removed or a file rewritten (gaps,
    duplicates, numbers out of time order). A write that failed is counted
    in the next event's ``lost``.
    """

    def __init__(self, path: str, stream: str | None = None) -> None:
        self.path = stream or path
        if stream:
            self.fd = _connect(stream)
        else:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        self.pid = _getpid()
        self.seq = 0
        self.lost = 0
        self.replaced: set[str] = set()
        self.lock = threading.RLock()

    def after_fork(self) -> None:
        """In a forked child: its own numbering (from 1) and a fresh lock."""
        self.pid = _getpid()
        self.seq = 0
        self.lost = 0
        self.lock = threading.RLock()

    def record(self, kind: str, **fields: Any) -> None:
        with self.lock:
            self.seq += 1
            event = {"ev": kind, "pid": _getpid(), "tid": _get_ident(), "t": _monotonic(), "seq": self.seq}
            if self.lost:
                event["lost"] = self.lost
            event.update(fields)
            head = {k: event[k] for k in ("ev", "pid", "tid", "t", "seq")}
            try:
                line = json.dumps(event, separators=(",", ":"), ensure_ascii=True)
            except (TypeError, ValueError):
                line = json.dumps({**head, "bad": True})
            if len(line) > EVENT_LIMIT:
                line = json.dumps({**head, "truncated": True})
            try:
                os.write(self.fd, (line + "\n").encode("ascii"))
                self.lost = 0
            except OSError:
                self.lost += 1
        if kind != events.TAMPER:
            self.check_replaced()

    def check_replaced(self) -> None:
        """Record (once each) a function the evidence relies on that the student's code replaced."""
        for name, (module, attr, real) in _REAL.items():
            if name not in self.replaced and getattr(module, attr, real) is not real:
                self.replaced.add(name)
                self.record(events.TAMPER, audit="replaced", why=f"replaces {name}", file="?", line=0)

    def seal(self) -> None:
        """The last event of a process that ends normally: how many events it wrote."""
        self.check_replaced()
        with self.lock:
            count = self.seq + 1
        self.record(events.SEAL, count=count)


RECORDER: Recorder | None = None


def record(kind: str, **fields: Any) -> None:
    """Record one evidence event (no-op outside a sandbox)."""
    if RECORDER is not None:
        RECORDER.record(kind, **fields)


def _after_fork() -> None:
    if RECORDER is not None:
        RECORDER.after_fork()
        record(events.PROC, role="fork", ppid=os.getppid(), argv0="")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def short(value: Any, limit: int = 200) -> Any:
    """A small wire encoding of ``value`` for an event (long data is summarised)."""
    encoded = wire.encode(value, max_nodes=200)
    text = json.dumps(encoded)
    if len(text) > limit * 4:
        return {"$other": {"type": type(value).__name__, "repr": wire._safe_repr(value)[:limit]}}
    return encoded


class LineRecorder(io.TextIOBase):
    """A text stream that writes whole lines to a file descriptor and records them.

    Each thread has its own line buffer, so a line is written with one system
    call however threads interleave their ``print`` calls (``print`` writes the
    text and the newline separately).
    """

    def __init__(self, fd: int, stream: str) -> None:
        super().__init__()
        self._fd = fd
        self._stream = stream
        self._bufs: dict[int, str] = {}
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fd

    @property
    def buffer(self) -> _BinaryLines:
        """``sys.stdout.buffer``: bytes written there are recorded as lines too."""
        return _BinaryLines(self)

    def write(self, s: str) -> int:  # type: ignore[override]
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        tid = _get_ident()
        with self._lock:
            buf = self._bufs.pop(tid, "") + s
        lines = []
        while "\n" in buf:
            line, buf = buf.split("\n", 1)
            lines.append(line + "\n")
        if buf:
            with self._lock:
                self._bufs[tid] = buf
        for line in lines:
            self._emit(line)
        return len(s)

    def flush(self) -> None:
        with self._lock:
            pending = list(self._bufs.values())
            self._bufs.clear()
        for text in pending:
            self._emit(text)

    def _emit(self, text: str) -> None:
        record(events.OUT, stream=self._stream, text=text[:2000], thread=threading.current_thread().name)
        data = text.encode("utf-8", "backslashreplace")
        while data:
            try:
                written = os.write(self._fd, data)
            except InterruptedError:
                continue
            except OSError:
                return
            data = data[written:]


class _BinaryLines(io.RawIOBase):
    """The binary side of a LineRecorder: decodes what it is given and writes it as text."""

    def __init__(self, text: LineRecorder) -> None:
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._text.fileno()

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._text.write(data.decode("utf-8", "backslashreplace"))
        return len(data)

    def flush(self) -> None:
        self._text.flush()


OUTPUTS: list[LineRecorder] = []
"""The recorders :func:`install_output` put on ``sys.stdout`` and ``sys.stderr`` (whatever the student put there since)."""


def flush_output() -> None:
    """Record the line each thread left unfinished on the recorders, as it stands (the runner: at the end of the import)."""
    for stream in OUTPUTS:
        stream.flush()


def install_output() -> None:
    for name, fd in (("stdout", 1), ("stderr", 2)):
        current = getattr(sys, name)
        if isinstance(current, LineRecorder):
            continue
        if current is not None:
            try:
                current.flush()
            except (OSError, ValueError):
                pass
        stream = LineRecorder(fd, name)
        OUTPUTS.append(stream)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _target_name(target: Any) -> str | None:
    if target is None:
        return None
    module = getattr(target, "__module__", None)
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None)
    if name is None:
        return type(target).__name__
    return f"{module}.{name}" if module else str(name)


def install_processes() -> None:
    from multiprocessing import process

    base = process.BaseProcess
    if getattr(base.start, "_grader_probe", False):
        return
    original_start = base.start
    original_join = base.join

    def start(self: Any) -> None:
        target = _target_name(getattr(self, "_target", None))  # start() deletes _target
        original_start(self)
        record(
            events.MP_START,
            child=self.pid,
            name=self.name,
            target=target,
            cls=_target_name(type(self)),
            daemon=bool(self.daemon),
        )

    def join(self: Any, timeout: float | None = None) -> None:
        t0 = _monotonic()
        original_join(self, timeout)
        try:
            exitcode = self.exitcode
        except (ValueError, AssertionError):
            exitcode = None
        record(events.MP_JOIN, child=self.pid, exitcode=exitcode, alive=exitcode is None, since=t0)

    start._grader_probe = True  # type: ignore[attr-defined]
    base.start = start  # type: ignore[method-assign]
    base.join = join  # type: ignore[method-assign]


def install_threads() -> None:
    cls = threading.Thread
    if getattr(cls.start, "_grader_probe", False):
        return
    original_start = cls.start
    original_join = cls.join

    def start(self: threading.Thread) -> None:
        original_start(self)
        record(
            events.TH_START,
            ident=self.ident,
            obj=id(self),
            native=getattr(self, "native_id", None),
            name=self.name,
            target=_target_name(getattr(self, "_target", None)),
            cls=_target_name(type(self)),
            daemon=self.daemon,
        )

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        t0 = _monotonic()
        original_join(self, timeout)
        record(events.TH_JOIN, ident=self.ident, obj=id(self), name=self.name, alive=self.is_alive(), since=t0)

    start._grader_probe = True  # type: ignore[attr-defined]
    cls.start = start  # type: ignore[method-assign]
    cls.join = join  # type: ignore[method-assign]


HELD_LOCKS: Callable[[], tuple[str, ...]] | None = None
"""The locks the current thread holds, once the ``locks`` probe is installed (recorded with each traced call)."""
_objects: dict[int, int] = {}
"""id() of an instance a traced method was called on -> its number in this process (1, 2, ...)."""


def _object_number(obj: Any) -> int:
    number = _objects.get(id(obj))
    if number is None:
        number = _objects[id(obj)] = len(_objects) + 1
    return number


def traced(func: Callable[..., Any], name: str, *, method: bool = False) -> Callable[..., Any]:
    """Wrap a student function (or, ``method``, a function of a class) so each call records enter and exit events."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        call = f"{_getpid()}-{next(_ids)}"
        extra: dict[str, Any] = {}
        if method and args:
            extra["obj"] = _object_number(args[0])
        if HELD_LOCKS is not None:
            extra["locks"] = list(HELD_LOCKS())
        record(events.ENTER, func=name, call=call, args=short(list(args[1:] if method else args)),
               kwargs=short(kwargs), thread=threading.current_thread().name, thread_no=thread_number(), **extra)
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            record(events.EXIT, func=name, call=call, error=type(exc).__name__)
            raise
        record(events.EXIT, func=name, call=call, result=short(result))
        return result

    wrapper._grader_traced = True  # type: ignore[attr-defined]
    return wrapper


def _wrap_method(module: Any, name: str) -> None:
    """Trace ``Class.method`` of the module: the function found on the class, set on that class."""
    class_name, _, method_name = name.partition(".")
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        return
    func = getattr(cls, method_name, None)
    if callable(func) and not getattr(func, "_grader_traced", False) and not isinstance(func, type):
        raw = cls.__dict__.get(method_name, func)
        if isinstance(raw, (staticmethod, classmethod)):
            return
        setattr(cls, method_name, traced(func, name, method=True))


def wrap_module(module: Any, names: list[str]) -> None:
    for name in names:
        if "." in name:
            _wrap_method(module, name)
            continue
        func = getattr(module, name, None)
        if callable(func) and not getattr(func, "_grader_traced", False) and not isinstance(func, type):
            setattr(module, name, traced(func, name))
    if _WATCHED:
        from . import probe_watch

        probe_watch.watch_module(module, _WATCHED)


_WATCHED: list[str] = []
"""Names of ``watch=`` (``Class`` or ``Class.attr``), from the scenario's ``trace`` entries marked ``@``."""


class _TraceFinder:
    """Meta-path finder that wraps traced functions once the student's module is executed."""

    def __init__(self, module: str, names: list[str]) -> None:
        self.module = module
        self.names = names

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.module:
            return None
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        names = self.names
        original_exec = loader.exec_module  # type: ignore[union-attr]

        def exec_module(module: Any) -> None:
            original_exec(module)
            wrap_module(module, names)

        loader.exec_module = exec_module  # type: ignore[method-assign,union-attr]
        return spec


def install_trace(module: str, names: list[str]) -> None:
    _WATCHED[:] = [n[len(events.WATCH_MARK):] for n in names if n.startswith(events.WATCH_MARK)]
    names = [n for n in names if not n.startswith(events.WATCH_MARK)]
    if not names and not _WATCHED:
        return
    loaded = sys.modules.get(module)
    if loaded is not None:
        wrap_module(loaded, names)
        return
    sys.meta_path.insert(0, _TraceFinder(module, names))


_stack_files: list[Any] = []


def install_stacks(out_dir: str) -> None:
    import faulthandler
    import signal

    if not hasattr(signal, "SIGUSR1") or not hasattr(faulthandler, "register"):
        return
    stacks = os.path.join(out_dir, "stacks")
    try:
        handle = open(os.path.join(stacks, f"{os.getpid()}.txt"), "w")  # noqa: SIM115 - lives as long as the process
    except OSError:
        return
    _stack_files.append(handle)
    faulthandler.register(signal.SIGUSR1, file=handle, all_threads=True, chain=False)


PROBES: dict[str, Callable[[dict[str, Any]], None]] = {}
FINISHERS: list[Callable[[], None]] = []  # extra probes' last writes, run by finish()


def finish() -> None:
    """Let extra probes write what they gathered, then seal, before the first process ends with ``os._exit``."""
    for finisher in list(FINISHERS):
        try:
            finisher()
        except Exception:  # noqa: BLE001 - evidence is best effort; never break the run
            pass
    if RECORDER is not None:
        RECORDER.seal()


def preload(scenario: dict[str, Any]) -> None:
    """Import ahead what :func:`install` imports for ``scenario``: its probes' modules and theirs (``events.PROBE_IMPORTS``).

    The first process does so before its guard, so that the fork server's forks find them loaded (it loads them all)
    and the zygote's clones inherit them: no process of the run imports them again under the guard.
    """
    import importlib

    modules = {events.PROBE_MODULES[name] for name in scenario.get("probes", []) if name in events.PROBE_MODULES}
    names = ["faulthandler"]
    if any(str(entry).startswith(events.WATCH_MARK) for entry in scenario.get("trace", [])):
        modules.add(events.PROBE_MODULES[events.PROBE_LOCKS])
        names += [f"{__package__}.probe_watch", "queue", "multiprocessing.queues"]
    for module in sorted(modules | {"probe_threads"}):
        names += [f"{__package__}.{module}", *events.PROBE_IMPORTS.get(module, ())]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def install(scenario: dict[str, Any], out_dir: str, role: str) -> None:
    """Install every probe the scenario asks for in this process."""
    global RECORDER
    if RECORDER is not None and RECORDER.pid == _getpid():
        return
    RECORDER = Recorder(os.path.join(out_dir, "evidence.jsonl"), scenario.get("evidence_stream"))
    from . import guard

    guard.protect_fd(RECORDER.fd)
    record(events.PROC, role=role, ppid=os.getppid(), argv0=os.path.basename(sys.argv[0]) if sys.argv else "")
    if role == "child":
        import atexit

        atexit.register(RECORDER.seal)  # registered first, so it runs after the probes' own last writes
    install_stacks(out_dir)
    install_output()
    install_processes()
    install_threads()
    from . import probe_threads

    probe_threads.install_thread_errors(scenario)
    install_trace(scenario["module"], list(scenario.get("trace", [])))
    requested = list(scenario.get("probes", []))
    if _WATCHED and events.PROBE_LOCKS not in requested and events.PROBE_RACE not in requested:
        requested.append(events.PROBE_LOCKS)  # watched attributes are recorded with the locks held
    if requested:
        import importlib

        for extra in sorted({events.PROBE_MODULES[name] for name in requested if name in events.PROBE_MODULES}):
            importlib.import_module(f"{__package__}.{extra}")  # registers its probes in PROBES
    for name in requested:
        probe = PROBES.get(name)
        if probe is None:
            raise ValueError(f"unknown probe: {name}")
        probe(scenario)
