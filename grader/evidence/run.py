"""What one sandbox run recorded, as typed views a check can query. Runs in the pytest process.

A :class:`Run` wraps the plain data a sandbox returned (see
:mod:`grader.sandbox`) and answers the questions checks ask: what the function
returned or raised, which process and thread printed each line, which child
processes and threads were started and joined, which traced calls ran where
and when, what was still alive when the function returned, and where each
process was blocked when the run timed out.

:meth:`Run.ending` is the one account of how a run that did not return
normally ended (import error, timeout, killed process, missing function,
exception); :class:`grader.checks.Submission` turns it into the check's
failure and :meth:`Run.describe_failure` into a phrase. Events are read by the
kinds of :mod:`grader.inside.events`, the schema the probes write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from grader.evidence.errors import StudentError
from grader.evidence.schema import require_event_kind
from grader.inside import events, wire
from grader.processes import HELPER_MARKS
from grader.sandbox import RawRun
from grader.sandbox.stacks import ProcessStack

__all__ = [
    "Call",
    "ChildProcess",
    "ChildThread",
    "Ending",
    "Line",
    "Run",
    "StudentError",
    "ThreadRun",
    "max_overlap",
]

_T = TypeVar("_T")

MP_HELPERS = HELPER_MARKS
"""Command-line marks of ``multiprocessing``'s own helper processes and the sandbox's zygote (not the student's)."""


def _tid(event: dict[str, Any]) -> int:
    """The thread id an event names, 0 when it names none or something else than an integer (hostile input)."""
    tid = event.get("tid")
    return tid if type(tid) is int else 0


@dataclass(frozen=True)
class Line:
    """One line printed by some process of the sandbox."""

    text: str
    stream: str
    pid: int
    tid: int
    thread: str
    t: float


@dataclass(frozen=True)
class Call:
    """One call of a traced student function."""

    func: str
    pid: int
    tid: int
    thread: str
    start: float
    end: float | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    error: str | None
    value: Any = None
    """What the call returned, as plain data (``None`` if it raised or has not returned)."""
    obj: int | None = None
    """For a traced method (``"Class.method"``): the instance it was called on, numbered 1, 2 ... per process."""
    locks: frozenset[str] = frozenset()
    """The locks the calling thread held when the call began (with ``probes=["locks"]``; see :mod:`grader.evidence.locks`)."""
    thread_no: int = 0
    """The calling thread's number in its process (1, 2 ... as threads first called a traced function; 0: not
    recorded). A thread started after another one ended may reuse its ``tid``, never its number."""

    @property
    def caller(self) -> tuple[int, int, int]:
        """The thread that made the call, told apart from a later thread that reused its ident: ``(pid, tid, thread_no)``."""
        return (self.pid, self.tid, self.thread_no)


@dataclass(frozen=True)
class ChildProcess:
    """A ``multiprocessing`` process started by some process of the sandbox."""

    pid: int
    parent: int
    name: str
    target: str | None
    cls: str | None
    daemon: bool
    started: float
    joined: float | None
    exitcode: int | None


@dataclass(frozen=True)
class ThreadRun:
    """A thread's life as the thread itself recorded it: from before ``run()`` to after it."""

    ident: int
    pid: int
    name: str
    begin: float
    end: float | None


@dataclass(frozen=True)
class ThreadError:
    """A thread that ended with an exception (``th_error``), with the innermost frame of the student's code in it."""
    SIZES: ClassVar[dict[str, int]] = {"name": 100, "error": 100, "message": 200, "file": 500, "func": 100}
    pid: int
    name: str
    error: str
    message: str
    file: str
    line: int
    func: str


@dataclass(frozen=True)
class ChildThread:
    """A ``threading.Thread`` started by some process of the sandbox."""

    ident: int
    pid: int
    name: str
    target: str | None
    daemon: bool
    started: float
    joined: float | None
    starter_tid: int


@dataclass(frozen=True)
class Ending:
    """How a run that did not return normally ended, in words for the student.

    ``kind`` is one of :data:`Ending.KINDS`; ``observed``, ``expected`` and
    ``hint`` are the check's failure message, ``brief`` the same in one phrase.
    """

    IMPORT_ERROR: ClassVar[str] = "import_error"
    TIMED_OUT: ClassVar[str] = "timed_out"
    ENDED: ClassVar[str] = "ended"
    MISSING: ClassVar[str] = "missing"
    RAISED: ClassVar[str] = "raised"
    REFUSED: ClassVar[str] = "refused"
    KINDS: ClassVar[tuple[str, ...]] = (IMPORT_ERROR, TIMED_OUT, ENDED, MISSING, RAISED, REFUSED)

    kind: str
    observed: str
    brief: str
    expected: str = ""
    hint: str = ""


def max_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of ``(start, end)`` intervals open at the same moment."""
    points = []
    for start, end in intervals:
        points.append((start, 1))
        points.append((end, -1))
    points.sort(key=lambda p: (p[0], p[1]))
    best = current = 0
    for _, delta in points:
        current += delta
        best = max(best, current)
    return best


def _keys(data: Any) -> frozenset[str]:
    return frozenset(k for k in data if isinstance(k, str)) if isinstance(data, list) else frozenset()


def _decode(data: Any, default: Any) -> Any:
    try:
        return wire.decode(data)
    except (wire.WireError, TypeError, ValueError):
        return default


def _by_kind(run: Run) -> dict[str, list[dict[str, Any]]]:
    """The run's events by kind (``ev``), for :meth:`Run.of`."""
    found: dict[str, list[dict[str, Any]]] = {}
    for event in run.events:
        ev = event.get("ev")
        if isinstance(ev, str):  # the kinds are strings; anything else is no kind a check asks for
            found.setdefault(ev, []).append(event)
    return found


class Run:
    """The evidence of one sandbox run of one action."""

    def __init__(self, raw: RawRun, *, label: str, module_file: str, timeout: float | None = None) -> None:
        self.raw = raw
        self.label = label
        self.module_file = module_file
        self.timeout = timeout
        """The time limit the run was given, in seconds (``None``: not known)."""
        result = raw.result or {}
        imp = result.get("import") if isinstance(result.get("import"), dict) else None
        call = result.get("call") if isinstance(result.get("call"), dict) else None
        self.import_error = (
            StudentError.from_dict(imp["error"]) if imp and not imp.get("ok") and isinstance(imp.get("error"), dict) else None
        )
        self.missing: str | None = call.get("missing") if call and isinstance(call.get("missing"), str) else None
        self.error = (
            StudentError.from_dict(call["error"]) if call and not call.get("ok") and isinstance(call.get("error"), dict) else None
        )
        self.returned = bool(call and call.get("ok"))
        self._value = _decode(call.get("value"), None) if self.returned and call else None
        self.duration: float | None = (
            float(call["duration"]) if call and type(call.get("duration")) in (int, float) else None
        )
        after = result.get("after")
        self._after: dict[str, Any] = after if isinstance(after, dict) else {}
        self.main_pid = raw.main_pid
        self.events = raw.events
        self._derived: dict[str, tuple[list[dict[str, Any]], int, Any]] = {}
        self.kernel = raw.kernel
        """What the kernel showed of the run's tree (:class:`grader.sandbox.witness.KernelView`), if sampled."""

    # -- outcome -------------------------------------------------------------
    @property
    def timed_out(self) -> bool:
        return self.raw.timed_out

    @property
    def value(self) -> Any:
        """The decoded return value (plain builtin types only)."""
        return self._value

    @property
    def stdout(self) -> str:
        return self.raw.stdout

    @property
    def stderr(self) -> str:
        return self.raw.stderr

    def stdout_lines(self) -> list[str]:
        """Lines of the captured stdout, as the student would see them in a terminal."""
        return self.raw.stdout.splitlines()

    # -- events --------------------------------------------------------------
    def of(self, kind: str) -> list[dict[str, Any]]:
        """The raw events of one kind (see :mod:`grader.inside.events`); an unknown kind is an assignment error."""
        require_event_kind(kind)
        return list(self.derived("events by kind", _by_kind).get(kind, ()))

    def derived(self, name: str, compute: Callable[[Run], _T]) -> _T:
        """``compute(self)``, computed once, and again if the events changed (an event added, the list replaced).

        The checks that share a run each ask it the same questions (its lock accesses, its integrity flags):
        what ``compute`` returns is kept under ``name`` and handed to every later caller, who must not change it.
        """
        found = self._derived.get(name)
        if found is None or found[0] is not self.events or found[1] != len(self.events):
            found = self._derived[name] = (self.events, len(self.events), compute(self))
        return found[2]  # type: ignore[no-any-return]

    def phase_time(self, name: str) -> float | None:
        """When the main process reached a phase: ``"import"``, ``"imported"``, ``"call"`` or ``"return"``."""
        for event in self.events:
            if event.get("ev") == events.PHASE and event.get("name") == name and event["pid"] == self.main_pid:
                return float(event["t"])
        return None

    def processes(self) -> dict[int, dict[str, Any]]:
        """Every Python process of the sandbox that started the probes: pid -> record."""
        return {e["pid"]: e for e in self.of(events.PROC)}

    def lines(self, stream: str = "stdout") -> list[Line]:
        """Printed lines, each with the process and thread that printed it."""
        out = []
        for e in self.of(events.OUT):
            if e.get("stream") != stream or not isinstance(e.get("text"), str):
                continue
            out.append(
                Line(e["text"].rstrip("\n"), stream, e["pid"], _tid(e), str(e.get("thread", "")), e["t"])
            )
        return out

    def calls(self, func: str | None = None) -> list[Call]:
        """Calls of traced functions and methods (see ``trace=`` of a run: ``"f"``, ``"Class.method"``), in start order."""
        exits = {e.get("call"): e for e in self.of(events.EXIT)}
        out = []
        for e in self.of(events.ENTER):
            if func is not None and e.get("func") != func:
                continue
            end = exits.get(e.get("call"))
            args = _decode(e.get("args"), [])
            kwargs = _decode(e.get("kwargs"), {})
            out.append(
                Call(
                    func=str(e.get("func")),
                    pid=e["pid"],
                    tid=_tid(e),
                    thread=str(e.get("thread", "")),
                    start=e["t"],
                    end=end["t"] if end else None,
                    args=tuple(args) if isinstance(args, list) else (),
                    kwargs=kwargs if isinstance(kwargs, dict) else {},
                    error=str(end.get("error")) if end and end.get("error") else None,
                    value=_decode(end.get("result"), None) if end and "result" in end else None,
                    obj=e["obj"] if type(e.get("obj")) is int else None,
                    locks=_keys(e.get("locks")),
                    thread_no=e["thread_no"] if type(e.get("thread_no")) is int else 0,
                )
            )
        return out

    def child_processes(self, parent: int | None = None) -> list[ChildProcess]:
        """``multiprocessing`` children started (by ``parent``, default any), in start order."""
        joins: dict[int, dict[str, Any]] = {}
        for e in self.of(events.MP_JOIN):
            if type(e.get("child")) is int and not e.get("alive"):
                joins.setdefault(e["child"], e)
        out = []
        for e in self.of(events.MP_START):
            if type(e.get("child")) is not int or (parent is not None and e["pid"] != parent):
                continue
            join = joins.get(e["child"])
            out.append(
                ChildProcess(
                    pid=e["child"],
                    parent=e["pid"],
                    name=str(e.get("name", "")),
                    target=e.get("target") if isinstance(e.get("target"), str) else None,
                    cls=e.get("cls") if isinstance(e.get("cls"), str) else None,
                    daemon=bool(e.get("daemon")),
                    started=e["t"],
                    joined=join["t"] if join else None,
                    exitcode=join.get("exitcode") if join and type(join.get("exitcode")) is int else None,
                )
            )
        return out

    def child_threads(self, pid: int | None = None) -> list[ChildThread]:
        """Threads started (in process ``pid``, default any), in start order.

        The system reuses the idents of finished threads (and Python the ids of
        freed objects), so a join is matched to the latest start before it of
        the same thread object with the same ident.
        """
        starts = [e for e in self.of(events.TH_START) if type(e.get("ident")) is int]
        joined: dict[int, float] = {}
        latest: dict[tuple[int, int, Any], int] = {}
        marks = [(e["t"], 0, i, e) for i, e in enumerate(starts)]
        marks += [(e["t"], 1, i, e) for i, e in enumerate(self.of(events.TH_JOIN)) if type(e.get("ident")) is int]
        for _, kind, index, e in sorted(marks, key=lambda m: (m[0], m[1], m[2])):
            obj = e.get("obj")
            key = (e["pid"], e["ident"], obj if type(obj) in (int, str) else None)  # a list would not hash
            if kind == 0:
                latest[key] = index
            elif not e.get("alive") and key in latest:
                joined.setdefault(latest[key], e["t"])
        out = []
        for index, e in enumerate(starts):
            if pid is not None and e["pid"] != pid:
                continue
            out.append(
                ChildThread(
                    ident=e["ident"],
                    pid=e["pid"],
                    name=str(e.get("name", "")),
                    target=e.get("target") if isinstance(e.get("target"), str) else None,
                    daemon=bool(e.get("daemon")),
                    started=e["t"],
                    joined=joined.get(index),
                    starter_tid=_tid(e),
                )
            )
        return out

    def thread_errors(self) -> list[ThreadError]:
        """Threads that died of an exception, as recorded (said by the student's process: every field checked, cut)."""
        out = []
        for e in self.of(events.TH_ERROR)[:50]:  # a run whose thousands of threads fail says so in the first ones
            text = {k: e[k][:size] if isinstance(e.get(k), str) else "" for k, size in ThreadError.SIZES.items()}
            line = e["line"] if type(e.get("line")) is int and e["line"] > 0 else 0
            out.append(ThreadError(e["pid"], text["name"], text["error"] or "an exception", text["message"],
                                   text["file"], line, text["func"]))
        return out

    def thread_runs(self, pid: int | None = None) -> list[ThreadRun]:
        """Threads as they recorded themselves (probe ``thread_lifetimes``), in begin order."""
        ends: dict[tuple[int, int], list[float]] = {}
        for e in self.of(events.TH_END):
            if type(e.get("ident")) is int:
                ends.setdefault((e["pid"], e["ident"]), []).append(e["t"])
        out = []
        for e in sorted(self.of(events.TH_BEGIN), key=lambda ev: ev["t"]):
            if type(e.get("ident")) is not int or (pid is not None and e["pid"] != pid):
                continue
            later = [t for t in ends.get((e["pid"], e["ident"]), []) if t >= e["t"]]
            out.append(ThreadRun(e["ident"], e["pid"], str(e.get("name", "")), e["t"], min(later) if later else None))
        return out

    def thread_run_at(self, pid: int, tid: int, t: float) -> ThreadRun | None:
        """The thread that was running as ident ``tid`` in process ``pid`` at time ``t``.

        Idents are reused once a thread ends, so it is the latest one that began
        with that ident by ``t`` (needs the probe ``thread_lifetimes``).
        """
        found = None
        for run in self.thread_runs(pid):
            if run.ident == tid and run.begin <= t:
                found = run
        return found

    @property
    def caller_tid(self) -> int | None:
        """Ident of the thread that called the student's function in the main process."""
        for event in self.events:
            if event.get("ev") == events.PHASE and event.get("name") == events.PHASE_CALL and event["pid"] == self.main_pid:
                return int(event.get("tid", 0))
        return None

    def module_globals(self) -> dict[int, dict[str, Any]]:
        """pid -> the student's plain module globals when that child process ended (probe ``module_globals``)."""
        out: dict[int, dict[str, Any]] = {}
        for e in self.of(events.GLOBALS):
            if isinstance(e.get("values"), dict):
                out[e["pid"]] = e["values"]
        return out

    # -- state when the function returned -------------------------------------
    def threads_alive_at_return(self) -> list[dict[str, Any]]:
        threads = self._after.get("threads", [])
        return [t for t in threads if isinstance(t, dict)] if isinstance(threads, list) else []

    def processes_alive_at_return(self) -> list[dict[str, Any]]:
        """``multiprocessing`` children of the main process still running when it returned."""
        children = self._after.get("mp_children", [])
        if not isinstance(children, list):
            return []
        return [c for c in children if isinstance(c, dict) and c.get("alive")]

    def import_side_effects(self, *, until_imported: bool = False) -> list[str]:
        """What a run that only imported the student's module did besides defining names.

        Phrases such as ``"started 2 process(es)"`` or ``"printed ['hi']"``, for a message
        ``"importing x.py " + " and ".join(...)``; empty when the import had no side effects.

        ``until_imported``: the run went on to call something after the import, and only what
        happened before its first process finished importing the module counts: processes and
        threads started, lines printed by that process (the runner flushes a line left unfinished
        at that point). A run whose import never finished is judged whole.
        """
        cut = self.phase_time(events.PHASE_IMPORTED) if until_imported else None
        end = float("inf") if cut is None else cut
        printed = [
            line.text for line in self.lines() + self.lines("stderr") if line.pid == self.main_pid and line.t <= end
        ]
        problems = []
        processes = [p for p in self.child_processes() if p.started <= end]
        threads = [t for t in self.child_threads() if t.started <= end]
        if processes:
            problems.append(f"started {len(processes)} process(es)")
        if threads:
            problems.append(f"started {len(threads)} thread(s)")
        if printed:
            problems.append(f"printed {printed[:3]!r}")
        return problems

    @property
    def leftovers(self) -> list[dict[str, Any]]:
        """Processes still running after the sandbox's main process ended (killed by the grader)."""
        return list(self.raw.leftovers)

    def student_leftovers(self) -> list[dict[str, Any]]:
        """:attr:`leftovers` without multiprocessing's own resource tracker or forkserver.

        The resource tracker a ``multiprocessing.Queue`` starts ends by itself once
        the main process has ended, and can be caught doing so among the leftovers:
        with its command line still readable, or already empty (a process whose
        memory is gone is exiting, not left running).
        """
        out = []
        for proc in self.leftovers:
            cmdline = str(proc.get("cmdline", ""))
            if cmdline and not any(helper in cmdline for helper in MP_HELPERS):
                out.append(proc)
        return out

    @property
    def stacks(self) -> dict[int, ProcessStack]:
        """Per-process stacks read before a timed-out run (or its left-over processes) was killed."""
        return dict(self.raw.stacks)

    # -- how the run ended -------------------------------------------------------
    def ending(self) -> Ending | None:
        """How the run ended if it did not return normally, or ``None`` if it did.

        The first that applies: the run left a file the grader refused to read
        (:attr:`grader.sandbox.RawRun.refused`), the module could not be imported (a syntax error
        included), the run timed out, the process ended (exit status or signal)
        before the function returned, the function does not exist, it raised.
        """
        module_file, label = self.module_file, self.label
        for refused in self.raw.refused[:1]:  # a file the grader would not read: what the run left cannot be trusted
            observed = f"running {label}, {refused['observed']}"
            return Ending(Ending.REFUSED, observed, observed, refused["expected"], refused["hint"])
        if self.import_error is not None:
            err = self.import_error
            observed = f"{module_file} could not be imported: {err.summary()}"
            hint = f"run `python {module_file}` yourself to see the same error, then fix the line shown"
            if err.type in ("ModuleNotFoundError", "ImportError"):
                hint = "only the standard library is available to your code; check the module name you import"
            return Ending(Ending.IMPORT_ERROR, observed, observed, f"{module_file} imports without errors", hint)
        if self.timed_out and self.raw.deadlock is not None:
            observed = (f"{label} deadlocked: after {self.raw.duration:.1f} s {self.raw.deadlock.describe()}; the "
                        f"grader stopped it without waiting for the time limit.")
            return Ending(Ending.TIMED_OUT, observed, f"{label} deadlocked (every thread waited for another)")
        if self.timed_out:
            limit = self.timeout
            observed = f"{label} did not finish within {limit:g} seconds." if limit else f"{label} did not finish."
            return Ending(Ending.TIMED_OUT, observed, f"{label} did not finish within the time limit")
        if self.raw.result is None:
            status = self.raw.exit_status
            how = f"exit status {status}" if status is not None and status >= 0 else f"signal {-(status or 0)}"
            observed = f"the process running {label} ended ({how}) before {label} returned"
            return Ending(
                Ending.ENDED,
                observed,
                observed,
                f"{label} returns normally",
                "look for sys.exit(), os._exit() or anything that kills the process in your code",
            )
        if self.missing is not None:
            return Ending(
                Ending.MISSING,
                f"{module_file} does not define a function named {self.missing}",
                f"{module_file} does not define {self.missing}()",
                f"a module-level function {self.missing}(...) as described in the assignment",
                "check the spelling and that it is not nested inside another function or class",
            )
        if self.error is not None:
            observed = f"{label} raised {self.error.summary()}"
            return Ending(
                Ending.RAISED,
                observed,
                observed,
                f"{label} returns normally",
                "the line shown is where the exception came from in your code",
            )
        return None

    def describe_failure(self) -> str | None:
        """Why the run did not return normally, in one phrase for the student, or ``None``."""
        ending = self.ending()
        return ending.brief if ending is not None else None
