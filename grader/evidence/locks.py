"""Lockset analysis: was every access to a shared value made under one lock common to all?

Runs in the pytest process: the trusted half of the lock toolkit (the probe
that records the evidence, in the student's processes, is
:mod:`grader.inside.probe_locks`). Ask for the probe in a run::

    run = submission.call("run", workers=4, times=200, probes=["locks"])

and then:

- :func:`accesses` lists every read and write of ``.value`` of a
  ``multiprocessing.Value`` (or ``RawValue``) in every process of the run, each
  with the ``multiprocessing`` locks the accessing thread held at that moment
  (acquired by the student's code: the value's own lock counts only when
  taken explicitly with ``counter.get_lock()``), the file and line of the
  student's code that made it, and how many times that same access was made;
- :func:`lock_creations` says where each lock was created (file, line, process);
- :func:`lockset` applies the Eraser rule to each value accessed by two or more
  threads of control: every access must hold at least one lock that every
  other access held too. It names the first access that broke the rule, in
  words for the student (``process 2 of 4 (pid 1234) read counter.value at
  locked_counter.py line 12 holding no lock``);
- :func:`process_labels` names the processes of a run for such messages.

Locks and values are identified in the same way in every process (a lock by
its semaphore's name, a value by the shared-memory file and offset it lives
at), so a lock created once and passed to every worker is one lock, and a lock
created per worker or per call is many.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grader.evidence.run import Run
from grader.inside import events

__all__ = [
    "Access",
    "Acquisition",
    "Attempt",
    "LockCreation",
    "LocksetResult",
    "accesses",
    "acquisitions",
    "attempts",
    "describe_lock",
    "holders",
    "lock_creations",
    "lockset",
    "process_labels",
    "unrecorded",
]


@dataclass(frozen=True)
class Access:
    """One kind of access to a shared value, made ``count`` times by one thread at one line."""

    pid: int
    tid: int
    value: str
    op: str
    locks: frozenset[str]
    own_lock: str | None
    file: str
    line: int
    func: str
    in_student_code: bool
    count: int
    first: float
    last: float
    last_value: Any
    size: int | None = None
    """For a ``"use"`` of a watched container attribute: the largest length it had at these accesses."""
    thread_name: str = ""
    thread_no: int = 0
    """1, 2, 3 ... for the threads of the process in the order they first used a lock (0: not recorded)."""
    varied: bool = False
    """Accesses of a site already seen under many sets of locks, counted together: ``locks`` are those held at all."""
    locks_seen: int = 0
    """For a ``varied`` access: how many different locks this thread held over all its accesses to the value."""

    @property
    def verb(self) -> str:
        """``read``, ``wrote`` or ``used``."""
        return {"read": "read", "write": "wrote"}.get(self.op, "used")

    @property
    def attribute(self) -> str | None:
        """For a watched attribute (``watch=`` of a run): its name (``items``), else ``None``."""
        return self.value.rpartition(".")[2] if self.value.startswith("attr:") else None

    @property
    def owner(self) -> str | None:
        """For a watched attribute: the object it belongs to, ``BoundedBuffer#1`` (instances numbered per process)."""
        if not self.value.startswith("attr:"):
            return None
        return self.value.split(":", 2)[-1].rpartition(".")[0]

    def where(self) -> str:
        """``locked_counter.py line 12``."""
        return f"{self.file} line {self.line}"

    @property
    def accessor(self) -> tuple[int, int, int]:
        """The thread of control that made the access: ``(pid, thread ident, thread_no)`` (idents are reused)."""
        return (self.pid, self.tid, self.thread_no)


@dataclass(frozen=True)
class LockCreation:
    """Where a lock was created: a ``multiprocessing`` one (anything built on ``SemLock``) or a ``threading`` one."""

    key: str
    kind: str
    pid: int
    file: str
    line: int
    func: str
    in_student_code: bool
    index: int = 0
    """0, 1, 2 ... among the locks this process made at the same line (``[Lock() for _ in range(5)]``)."""
    initial: int | None = None
    """A semaphore's initial value (a ``Barrier``: its number of parties)."""


@dataclass(frozen=True)
class Acquisition:
    """One kind of acquisition of a lock, made ``count`` times by one thread at one line holding ``held``.

    ``mode`` is ``"block"`` (waits as long as it takes), ``"try"``
    (``blocking=False``) or ``"timeout"``; ``reentry`` says an ``RLock`` was
    taken again by the thread that held it. ``op`` is ``"acquire"``, or for the
    other operations counted the same way ``"notify"``, ``"notify_all"``,
    ``"set"``, ``"clear"``, ``"release"`` (a semaphore's) (see :func:`acquisitions`).
    """

    pid: int
    tid: int
    lock: str
    held: frozenset[str]
    mode: str
    reentry: bool
    file: str
    line: int
    func: str
    in_student_code: bool
    count: int
    first: float
    last: float
    op: str = "acquire"
    thread_no: int = 0
    """The thread's number in its process (1, 2 ... in order of first lock use): unlike ``tid``, never reused."""
    thread_name: str = ""
    free_under: frozenset[str] = frozenset()
    """Locks this thread held without a break since it saw this ``Lock`` free (``lock.locked()`` was ``False``)."""

    @property
    def thread(self) -> tuple[int, int, int]:
        """The thread of control, told apart from a later thread that reused its ident: ``(pid, tid, thread_no)``."""
        return (self.pid, self.tid, self.thread_no)

    def where(self) -> str:
        """``philosophers.py line 14``."""
        return f"{self.file} line {self.line}"


@dataclass(frozen=True)
class Attempt:
    """An acquisition that waited: thread ``(pid, tid)`` wanted ``lock`` at ``file`` line ``line`` holding ``held``.

    Written when the acquire had waited a moment (``probe_wants.WANT_AFTER``)
    without the lock; ``ended`` says whether it ever returned (``got``: with the
    lock). One that never ended was still waiting when the run was stopped.
    """

    pid: int
    tid: int
    lock: str
    held: frozenset[str]
    mode: str
    file: str
    line: int
    func: str
    in_student_code: bool
    start: float
    ended: bool
    got: bool
    thread_no: int = 0
    thread_name: str = ""

    @property
    def thread(self) -> tuple[int, int, int]:
        """The thread of control, as :attr:`Acquisition.thread`."""
        return (self.pid, self.tid, self.thread_no)

    def where(self) -> str:
        """``philosophers.py line 16``."""
        return f"{self.file} line {self.line}"


@dataclass(frozen=True)
class LocksetResult:
    """The lockset verdict for one shared value."""

    value: str
    accesses: tuple[Access, ...]
    common: frozenset[str]
    problem: str | None

    @property
    def ok(self) -> bool:
        """Every access held a lock that every other access held too."""
        return self.problem is None


MAX_HELD = 64
"""Locks one thread may be recorded holding at once; a longer list in an event is not believed."""


def _int(value: Any, default: int = 0) -> int:
    return value if type(value) is int else default


def _str(value: Any, default: str = "?") -> str:
    return value if isinstance(value, str) else default


def _num(value: Any, default: float) -> float:
    return float(value) if type(value) in (int, float) else default


def accesses(run: Run) -> list[Access]:
    """Every access to a shared value recorded by the ``locks`` probe, in order of first occurrence.

    Accesses that only differ in how often they were made are merged: ``count``
    is how many times that thread made that access at that line holding those
    locks (1 when the process ended before it could report its counts). Read
    once per run, however many checks share it.
    """
    return list(run.derived("lock accesses", _accesses))


def _accesses(run: Run) -> tuple[Access, ...]:
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    summarised: set[tuple[Any, ...]] = set()
    for event in run.events:
        kind = event.get("ev")
        if kind not in (events.LK_ACCESS, events.LK_SUMMARY):
            continue
        locks = event.get("locks")
        if not isinstance(locks, list) or not all(isinstance(k, str) for k in locks):
            continue
        tid = _int(event.get("thread"), _int(event.get("tid"))) if kind == events.LK_SUMMARY else _int(event.get("tid"))
        own = event.get("own") if isinstance(event.get("own"), str) else None
        varied = event.get("varied") is True
        key = (
            event["pid"], tid, _str(event.get("value")), _str(event.get("op")), None if varied else frozenset(locks),
            own, _str(event.get("file")), _int(event.get("line")), _str(event.get("func")),
            _int(event.get("thread_no")),
        )
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = {
                "count": 0, "first": float(event["t"]), "last": float(event["t"]), "value": event.get("v"),
                "student": bool(event.get("student")), "size": None, "name": _str(event.get("name"), ""),
                "locks": frozenset(locks), "seen": 0,
            }
        if varied:  # the locks held at every access it counts, and the thread's count of different locks
            entry["locks"] = entry["locks"].intersection(locks)
            entry["seen"] = max(entry["seen"], _int(event.get("distinct")))
        size = event.get("size")
        if type(size) is int and (entry["size"] is None or size > entry["size"]):
            entry["size"] = size
        if kind == events.LK_SUMMARY:
            if key not in summarised:  # the first-seen event is counted in the summary
                summarised.add(key)
                entry["count"] = 0
            entry["count"] += max(1, _int(event.get("count"), 1))
            entry["first"] = min(entry["first"], _num(event.get("first"), entry["first"]))
            last = _num(event.get("last"), entry["last"])
            if last >= entry["last"]:
                entry["last"], entry["value"] = last, event.get("v")
        elif key not in summarised:
            entry["count"] = max(entry["count"], 1)
    out = [
        Access(
            pid=k[0], tid=k[1], value=k[2], op=k[3], locks=e["locks"], own_lock=k[5], file=k[6], line=k[7],
            func=k[8], in_student_code=e["student"], count=e["count"], first=e["first"], last=e["last"],
            last_value=e["value"] if type(e["value"]) in (int, float, bool) else None, size=e["size"],
            thread_name=e["name"], thread_no=k[9], varied=k[4] is None, locks_seen=e["seen"],
        )
        for k, e in merged.items()
    ]
    out.sort(key=lambda a: a.first)
    return tuple(out)


def lock_creations(run: Run) -> dict[str, LockCreation]:
    """Where each lock of the run was created, by lock identity (the first 100 per process are recorded)."""
    out: dict[str, LockCreation] = {}
    for event in run.of(events.LK_NEW):
        key = event.get("key")
        if isinstance(key, str) and key not in out:
            out[key] = LockCreation(
                key=key, kind=_str(event.get("lock"), "lock"), pid=event["pid"], file=_str(event.get("file")),
                line=_int(event.get("line")), func=_str(event.get("func")), in_student_code=bool(event.get("student")),
                index=_int(event.get("index")), initial=event["initial"] if type(event.get("initial")) is int else None,
            )
    return out


def acquisitions(run: Run, *, op: str | None = "acquire") -> list[Acquisition]:
    """Every kind of lock acquisition recorded by the ``locks`` probe (``threading`` and ``multiprocessing``).

    One record per thread, lock, locks already held, mode and line, with how
    many times it happened; in order of first occurrence. ``op=None`` gives the
    other counted operations too (``notify``, ``notify_all``, ``set``, ``clear``,
    a semaphore's ``release``), ``op="notify"`` only those.
    """
    merged: dict[tuple[Any, ...], list[Any]] = {}
    summarised: set[tuple[Any, ...]] = set()
    for event in run.events:
        kind = event.get("ev")
        if kind not in (events.LK_OP, events.LK_OP_SUMMARY) or (op is not None and event.get("op") != op):
            continue
        held = event.get("held")
        if not isinstance(held, list) or not all(isinstance(k, str) for k in held):
            continue
        summary = kind == events.LK_OP_SUMMARY
        tid = _int(event.get("thread"), _int(event.get("tid"))) if summary else _int(event.get("tid"))
        key = (
            event["pid"], tid, _str(event.get("lock")), frozenset(held), _str(event.get("mode"), ""),
            bool(event.get("reentry")), _str(event.get("file")), _int(event.get("line")), _str(event.get("func")),
            bool(event.get("student")), _str(event.get("op")), _int(event.get("thread_no")),
            _keys(event.get("free_under")),
        )
        t = float(event["t"])
        entry = merged.setdefault(key, [0, t, t, _str(event.get("name"), "")])
        if summary:
            if key not in summarised:
                summarised.add(key)
                entry[0] = 0
            entry[0] += max(1, _int(event.get("count"), 1))
            entry[1] = min(entry[1], _num(event.get("first"), entry[1]))
            entry[2] = max(entry[2], _num(event.get("last"), entry[2]))
        elif key not in summarised:
            entry[0] = max(entry[0], 1)
    out = [
        Acquisition(
            pid=k[0], tid=k[1], lock=k[2], held=k[3], mode=k[4], reentry=k[5], file=k[6], line=k[7], func=k[8],
            in_student_code=k[9], op=k[10], thread_no=k[11], count=e[0], first=e[1], last=e[2], thread_name=e[3],
            free_under=k[12],
        )
        for k, e in merged.items()
    ]
    out.sort(key=lambda a: a.first)
    return out


def _keys(value: Any) -> frozenset[str]:
    """A list of lock keys from an event, or nothing when it is not one (at most :data:`MAX_HELD`)."""
    if not isinstance(value, list) or len(value) > MAX_HELD or not all(isinstance(k, str) for k in value):
        return frozenset()
    return frozenset(value)


def attempts(run: Run) -> list[Attempt]:
    """Every acquisition that had to wait a moment (``lk_want`` events), in order; first record of each wins.

    An attempt with a malformed field is left out; ``ended`` is ``False`` for
    one whose acquire never returned (the run deadlocked or was stopped there).
    """
    starts: dict[tuple[int, int], dict[str, Any]] = {}
    ends: dict[tuple[int, int], bool] = {}
    for event in run.of(events.LK_WANT):
        number = event.get("want")
        if type(number) is not int or number <= 0:
            continue
        key = (event["pid"], number)
        if event.get("phase") == "end":
            ends.setdefault(key, event.get("ok") is True)
            continue
        held = event.get("held")
        if event.get("phase") != "start" or not isinstance(held, list) or not isinstance(event.get("lock"), str):
            continue
        if len(held) <= MAX_HELD and all(isinstance(k, str) for k in held):
            starts.setdefault(key, event)
    out = [
        Attempt(
            pid=pid, tid=_int(event.get("tid")), lock=event["lock"], held=frozenset(event["held"]),
            mode=_str(event.get("mode"), ""), file=_str(event.get("file")), line=_int(event.get("line")),
            func=_str(event.get("func")), in_student_code=bool(event.get("student")), start=float(event["t"]),
            ended=(pid, number) in ends, got=ends.get((pid, number), False), thread_no=_int(event.get("thread_no")),
            thread_name=_str(event.get("name"), ""),
        )
        for (pid, number), event in starts.items()
    ]
    out.sort(key=lambda a: a.start)
    return out


def holders(run: Run) -> dict[str, set[tuple[int, int, int]]]:
    """Lock identity -> every thread of control that acquired it, as :attr:`Acquisition.thread`."""
    out: dict[str, set[tuple[int, int, int]]] = defaultdict(set)
    for acquisition in acquisitions(run):
        out[acquisition.lock].add(acquisition.thread)
    return dict(out)


def process_labels(run: Run) -> dict[int, str]:
    """Names for the processes of a run: ``the parent process (pid 1200)``, ``process 2 of 4 (pid 1234)``.

    Children of the first process are numbered in the order they were started;
    any other process is ``process pid N``.
    """
    labels = {run.main_pid: f"the parent process (pid {run.main_pid})"}
    children = run.child_processes(parent=run.main_pid)
    for index, child in enumerate(children, 1):
        labels.setdefault(child.pid, f"process {index} of {len(children)} (pid {child.pid})")
    for pid in run.processes():
        labels.setdefault(pid, f"process pid {pid}")
    return labels


def _main_threads(run: Run) -> dict[int, int]:
    return {pid: _int(event.get("tid")) for pid, event in run.processes().items()}


def _accessor_label(access: Access, labels: dict[int, str], main_threads: dict[int, int]) -> str:
    label = labels.get(access.pid, f"process pid {access.pid}")
    if access.pid in main_threads and main_threads[access.pid] != access.tid:
        label += f", in thread {access.thread_name!r}" if access.thread_name else ", in a thread it started"
    return label


def describe_lock(
    key: str,
    *,
    creations: dict[str, LockCreation],
    labels: dict[int, str],
    own_lock: str | None = None,
    numbered: bool = False,
) -> str:
    """A lock in the student's terms: ``the Lock created at locked_counter.py line 14 in the parent process``.

    ``numbered``: tell apart locks made at the same line (``... line 7 in dine() (number 3 of the locks made
    there) ...``).
    """
    if own_lock is not None and key == own_lock:
        return "counter.get_lock() (the Value's own lock)"
    made = creations.get(key)
    if made is None:
        return "a lock whose creation was not recorded"
    where = labels.get(made.pid, f"process pid {made.pid}")
    where = where.split(" (pid")[0] if made.pid in labels else where
    inside = f" in {made.func}()" if made.in_student_code and made.func != "<module>" else ""
    siblings = sum(1 for c in creations.values() if (c.pid, c.file, c.line) == (made.pid, made.file, made.line))
    number = f" (number {made.index + 1} of the locks made there)" if numbered and (siblings > 1 or made.index) else ""
    return f"the {made.kind} created at {made.file} line {made.line}{inside}{number} by {where}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def lockset(
    run: Run,
    *,
    name: str = "counter.value",
    include: Callable[[Access], bool] | None = None,
    labels: dict[int, str] | None = None,
) -> list[LocksetResult]:
    """Apply the lockset rule to every value accessed by two or more threads of control.

    ``include`` selects the accesses to judge; by default every access except
    those of the first process's main thread (it usually creates the value and
    reads the result after joining the workers, when no one else runs).
    ``name`` is how messages call the value (``counter.value``); ``labels``
    how they call processes (default :func:`process_labels`).

    A watched attribute all of whose chosen accesses are reads is not judged
    (set before the threads started and only read since: ``self.capacity``). Watched
    attributes (``watch=`` of a run) are judged like shared values; an
    in-place ``"use"`` of a container counts as a write.

    Each result's ``problem`` is ``None`` when some lock was held at every
    access, else one sentence naming the first offending access: one that held
    no lock at all, a thread whose own accesses held no lock in common (a lock
    created anew for each access), or two threads that held different locks. A process that had more kinds of
    access than the probe records (its ``lk_dropped`` of accesses) leaves every value unproven: fail closed.
    """
    labels = labels if labels is not None else process_labels(run)
    main_threads = _main_threads(run)
    creations = lock_creations(run)
    main_tid = main_threads.get(run.main_pid)

    def default(access: Access) -> bool:
        return not (access.pid == run.main_pid and access.tid == main_tid)

    chosen = [a for a in accesses(run) if (include or default)(a)]
    by_value: dict[str, list[Access]] = defaultdict(list)
    for access in chosen:
        by_value[access.value].append(access)
    order = {pid: index for index, pid in enumerate(labels)}
    results = []
    for value, group in by_value.items():
        if len({a.accessor for a in group}) < 2 or (value.startswith("attr:") and all(a.op == "read" for a in group)):
            continue  # one thread of control, or an attribute only read (set up before the threads, then read-only)
        group.sort(key=lambda a: (order.get(a.pid, len(order)), a.first))
        common = frozenset.intersection(*(a.locks for a in group))
        problem = _explain(group, name, labels, main_threads, creations) if not common else _unrecorded(run, name, labels)
        results.append(LocksetResult(value, tuple(group), common, problem))
    return results


def unrecorded(run: Run, what: str) -> dict[int, int]:
    """Process -> its records of ``what`` (``"accesses"``, ``"lock operations"``) counted but not kept (``lk_dropped``)."""
    out: dict[int, int] = {}
    for event in run.of(events.LK_DROPPED):
        count = event.get("count")
        if event.get("what") == what and type(count) is int and count > 0:
            out[event["pid"]] = out.get(event["pid"], 0) + count
    return out


def _unrecorded(run: Run, name: str, labels: dict[int, str]) -> str | None:
    """Why no lock can be shown common to all accesses when a process had more kinds of them than the probe keeps."""
    pid, count = min(unrecorded(run, "accesses").items(), default=(0, 0))
    return (
        f"{labels.get(pid, f'process pid {pid}')} made more kinds of access to shared values (value, read or write, "
        f"line, thread, locks held) than the probe records, and {count} of its accesses were not recorded: no lock "
        f"can be shown held at every access to {name}"
    ) if count else None


def _explain(
    group: list[Access],
    name: str,
    labels: dict[int, str],
    main_threads: dict[int, int],
    creations: dict[str, LockCreation],
) -> str:
    def who(access: Access) -> str:
        return _accessor_label(access, labels, main_threads)

    def lock_words(access: Access, locks: Iterable[str]) -> str:
        return " and ".join(
            describe_lock(k, creations=creations, labels=labels, own_lock=access.own_lock) for k in sorted(locks)
        )

    bare = [a for a in group if not a.locks and not a.varied]
    if bare:
        first = bare[0]
        others = sorted({who(a) for a in bare if a.accessor != first.accessor})
        text = f"{who(first)} {first.verb} {name} at {first.where()} holding no lock ({_times(first.count)})"
        if others:
            text += f"; {', '.join(others[:3])}{' and others' if len(others) > 3 else ''} did the same"
        return text
    by_accessor: dict[tuple[int, int, int], list[Access]] = defaultdict(list)
    for access in group:
        by_accessor[access.accessor].append(access)
    for own in by_accessor.values():
        if not frozenset.intersection(*(a.locks for a in own)):
            locks = set().union(*(a.locks for a in own))
            count = max([len(locks)] + [a.locks_seen for a in own if a.varied])
            sites = sorted({(creations[k].file, creations[k].line) for k in locks if k in creations})
            made = (
                f"; they were created at {', '.join(f'{f} line {n}' for f, n in sites[:3])}"
                if sites
                else ""
            )
            first = own[0]
            return (
                f"{who(first)} {first.verb} {name} at {first.where()} under {count} different locks, none of "
                f"them held at every access{made}: a lock created anew for each access is held by no one else, "
                "so it excludes nothing"
            )
    accessors = list(by_accessor.values())
    base = accessors[0]
    base_locks = frozenset.intersection(*(a.locks for a in base))
    for other in accessors[1:]:
        other_locks = frozenset.intersection(*(a.locks for a in other))
        if not base_locks & other_locks:
            a, b = base[0], other[0]
            return (
                f"{who(a)} {a.verb} {name} at {a.where()} holding {lock_words(a, base_locks)}, but {who(b)} "
                f"{b.verb} it at {b.where()} holding {lock_words(b, other_locks)}: each holds a different "
                "lock, so they do not exclude each other"
            )
    # Every pair shares a lock, yet no lock is common to all (three locks used in a ring).
    first = group[0]
    return (
        f"no lock was held at every access to {name}: {who(first)} held {lock_words(first, first.locks)} "
        f"at {first.where()}, other accesses held other locks"
    )
