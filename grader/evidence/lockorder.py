"""The lock-order graph: could the order in which locks were taken ever close a deadlock cycle?

Runs in the pytest process. With ``probes=["locks"]`` every acquisition of a
lock the student's code made (``threading`` and ``multiprocessing``) is recorded
with the locks the thread already held (:func:`grader.evidence.locks.acquisitions`).
An *edge* ``A -> B`` says a thread acquired ``B`` while holding ``A``; a cycle of
edges taken by as many different threads is a deadlock waiting for its moment:
if each thread takes its first lock at the same time, each waits forever for the
next. It is found on every run, whether or not this run deadlocked.

Every lock instance is its own node (``forks = [Lock() for _ in range(5)]`` are
five nodes, told apart by their index at the line that made them). A cycle that
cannot close is not reported:

- re-entering an ``RLock`` its thread holds is no edge;
- an acquisition that never waits forever (``acquire(blocking=False)``, or with
  a timeout, then backing off) is no edge;
- an acquisition that cannot wait is no edge: the thread saw the ``Lock`` free
  (``lock.locked()`` was ``False``) while holding a lock ``G`` that it kept
  until it took it, and every acquisition of that ``Lock`` in the run holds
  ``G``, so no one could take it in between (a monitor that takes both forks
  under its Condition once ``wait_for`` saw them free, and puts them back
  holding the Condition too);
- edges all taken while holding one common *guard* lock (a waiter, a
  monitor's lock) cannot be waited on at once;
- edges all taken while holding a counting semaphore whose initial value is
  smaller than the number of edges of the cycle (a semaphore that seats at
  most ``n - 1`` of ``n`` philosophers);
- edges taken by one thread only (one thread cannot wait at two places).

Acquisitions that were still waiting when the run was stopped (attempts,
:func:`grader.evidence.locks.attempts`) are edges too: a run that deadlocked on
its first acquisitions shows its cycle by line like one that finished.

Nodes are mutual-exclusion locks: ``Lock``, ``RLock``, a ``Condition``'s lock,
a semaphore whose initial value is 1, and ``multiprocessing`` locks; counting
semaphores take part only as guards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from grader.evidence.locks import (
    Acquisition,
    Attempt,
    LockCreation,
    acquisitions,
    attempts,
    describe_lock,
    lock_creations,
    process_labels,
)
from grader.evidence.run import Run
from grader.inside import events

__all__ = [
    "BlockedCycle",
    "OrderCycle",
    "OrderEdge",
    "PauseSummary",
    "blocked_cycle",
    "order_cycles",
    "order_edges",
    "pauses",
    "stayed_open",
]

MAX_CYCLES = 20
"""Cycles reported at most (the first found, shortest first)."""
_SEARCH_STEPS = 20000
MAX_CYCLE_LENGTH = 100
"""Locks in a cycle at most: a longer ring is not looked for (each step of one is searched recursively)."""
MAX_WAITING = 500
"""Threads still waiting that :func:`blocked_cycle` looks at (the earliest), however many the evidence names."""
SHOWN_STEPS = 8
"""Threads of a circle named one by one in :meth:`BlockedCycle.describe`."""
_MUTEX_KINDS = frozenset({"Lock", "RLock", "Condition"})


@dataclass(frozen=True)
class OrderEdge:
    """Thread ``(pid, tid)`` acquired ``acquired`` at ``file`` line ``line`` while holding ``held``."""

    held: str
    acquired: str
    pid: int
    tid: int
    file: str
    line: int
    func: str
    guards: frozenset[str]
    """The other locks the thread held at that moment."""
    held_at: str | None
    """Where the same thread acquired ``held`` (``philosophers.py line 13``), if recorded."""
    count: int
    thread_no: int = 0
    thread_name: str = ""
    waiting: bool = False
    """The acquisition never returned: the thread was still waiting for ``acquired`` when the run was stopped."""

    @property
    def thread(self) -> tuple[int, int, int]:
        """The thread that took the edge (see :attr:`grader.evidence.locks.Acquisition.thread`)."""
        return (self.pid, self.tid, self.thread_no)

    def where(self) -> str:
        """``philosophers.py line 14``."""
        return f"{self.file} line {self.line}"


@dataclass(frozen=True)
class OrderCycle:
    """A cycle of the lock-order graph that could close: one edge per lock, each by a different thread."""

    edges: tuple[OrderEdge, ...]

    @property
    def locks(self) -> tuple[str, ...]:
        """The locks of the cycle, in order: each edge goes from one to the next."""
        return tuple(edge.held for edge in self.edges)

    def describe(self, run: Run, names: dict[str, str] | None = None) -> str:
        """The cycle in the student's terms: which thread took which lock then which, at which lines."""
        lock = _lock_namer(run, names)
        steps = []
        for edge in self.edges:
            first = f" (at {edge.held_at})" if edge.held_at else ""
            then = "then waited for" if edge.waiting else "then"
            steps.append(f"{_thread_words(run, edge)} took {lock(edge.held)}{first}, {then} {lock(edge.acquired)} "
                         f"at {edge.where()}")
        ending = (
            f"This run deadlocked there: each of these {len(self.edges)} threads held its first lock and waited "
            "forever for the next, a cycle"
            if all(edge.waiting for edge in self.edges)
            else f"If each of these {len(self.edges)} threads takes its first lock at the same moment, each waits "
            "forever for the next, a cycle"
        )
        return f"a deadlock is possible: {'; '.join(steps)}. {ending}"


def _thread_words(run: Run, one: OrderEdge | Attempt) -> str:
    if (one.pid, one.tid) == (run.main_pid, run.caller_tid):
        return "the calling thread"
    return f"thread {one.thread_name!r}" if one.thread_name else f"thread {one.tid} of process {one.pid}"


def _lock_namer(run: Run, names: dict[str, str] | None) -> Callable[[str], str]:
    """Lock key -> ``fork 3`` (from ``names``) or ``Lock #2 made at philosophers.py line 20``."""
    creations = lock_creations(run)
    labels = process_labels(run)

    def lock(key: str) -> str:
        if names and key in names:
            return names[key]
        made = creations.get(key)
        if made is None:
            return describe_lock(key, creations=creations, labels=labels, numbered=True)
        many = any(c is not made and (c.pid, c.file, c.line) == (made.pid, made.file, made.line)
                   for c in creations.values())
        number = f" #{made.index + 1}" if many or made.index else ""
        return f"{made.kind}{number} made at {made.file} line {made.line}"

    return lock


def _is_node(key: str, creations: dict[str, LockCreation]) -> bool:
    made = creations.get(key)
    if made is None:
        return True
    if made.kind in _MUTEX_KINDS:
        return True
    return made.kind in ("Semaphore", "BoundedSemaphore") and made.initial == 1


def _held_at(chosen: list[Acquisition], edge_of: Acquisition | Attempt, held: str) -> str | None:
    for other in chosen:
        if (other.thread, other.lock) == (edge_of.thread, held) and other.held < edge_of.held:
            return other.where()
    return None


def _always_under(taken: list[Acquisition], waited: list[Attempt]) -> dict[str, frozenset[str]]:
    """Lock -> the locks held at every acquisition and attempt of it (re-entries aside)."""
    out: dict[str, frozenset[str]] = {}
    every: list[Acquisition | Attempt] = [*taken, *waited]
    for one in every:
        if not (isinstance(one, Acquisition) and one.reentry):
            out[one.lock] = out[one.lock] & one.held if one.lock in out else one.held
    return out


def _cannot_wait(acquisition: Acquisition, always: dict[str, frozenset[str]]) -> bool:
    """Seen free under a lock still held, which every acquisition of this lock holds (see the module's docstring)."""
    return bool(acquisition.free_under & acquisition.held & always.get(acquisition.lock, frozenset()))


def order_edges(run: Run) -> list[OrderEdge]:
    """Every edge ``held -> acquired`` of the run's lock-order graph (blocking acquisitions and attempts)."""
    creations = lock_creations(run)
    taken = acquisitions(run)
    waited = [a for a in attempts(run) if a.mode == "block" and a.lock not in a.held]
    always = _always_under(taken, waited)
    chosen: list[Acquisition | Attempt] = [
        a for a in taken if not (a.reentry or a.mode in ("try", "timeout") or _cannot_wait(a, always))
    ]
    chosen += [a for a in waited if not a.ended]  # one that ended was recorded as an acquisition as well
    out = []
    for acquisition in chosen:
        if not _is_node(acquisition.lock, creations):
            continue
        for held in sorted(acquisition.held - {acquisition.lock}):
            if not _is_node(held, creations):
                continue
            out.append(
                OrderEdge(
                    held=held, acquired=acquisition.lock, pid=acquisition.pid, tid=acquisition.tid,
                    file=acquisition.file, line=acquisition.line, func=acquisition.func,
                    guards=acquisition.held - {held}, held_at=_held_at(taken, acquisition, held),
                    count=acquisition.count if isinstance(acquisition, Acquisition) else 1,
                    thread_no=acquisition.thread_no, thread_name=acquisition.thread_name,
                    waiting=isinstance(acquisition, Attempt),
                )
            )
    return out


def _guarded(edges: list[OrderEdge], creations: dict[str, LockCreation]) -> bool:
    """Whether the chosen edges cannot all wait at once: a common guard lock, or a semaphore seating too few."""
    common = frozenset.intersection(*(edge.guards for edge in edges))
    for guard in common:
        made = creations.get(guard)
        if made is None or made.kind not in ("Semaphore", "BoundedSemaphore") or made.initial is None:
            return True
        if made.initial < len(edges):
            return True
    return False


def _simple_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Elementary cycles (each listed once, from its smallest node), shortest first, within a search budget."""
    nodes = sorted(graph)
    found: list[list[str]] = []
    steps = 0
    for start in nodes:
        stack = [(start, [start])]
        while stack and steps < _SEARCH_STEPS:
            steps += 1
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start and len(path) > 1:
                    found.append(path)
                elif nxt > start and nxt not in path and len(path) < MAX_CYCLE_LENGTH:
                    stack.append((nxt, [*path, nxt]))
    found.sort(key=len)
    return found


def _close(
    cycle: list[str], by_pair: dict[tuple[str, str], list[OrderEdge]], creations: dict[str, LockCreation]
) -> OrderCycle | None:
    """One edge per step of ``cycle``, by pairwise different threads, not all guarded; ``None`` if none exists."""
    pairs = [(cycle[i], cycle[(i + 1) % len(cycle)]) for i in range(len(cycle))]
    budget = [2000]

    def pick(index: int, chosen: list[OrderEdge]) -> list[OrderEdge] | None:
        if index == len(pairs):
            return None if _guarded(chosen, creations) else list(chosen)
        for edge in by_pair[pairs[index]]:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            if any(edge.thread == other.thread for other in chosen):
                continue
            done = pick(index + 1, [*chosen, edge])
            if done is not None:
                return done
        return None

    edges = pick(0, [])
    return OrderCycle(tuple(edges)) if edges else None


def order_cycles(run: Run) -> list[OrderCycle]:
    """The cycles of the lock-order graph that could close (see the module's docstring), shortest first."""
    creations = lock_creations(run)
    by_pair: dict[tuple[str, str], list[OrderEdge]] = defaultdict(list)
    for edge in order_edges(run):
        by_pair[(edge.held, edge.acquired)].append(edge)
    graph: dict[str, set[str]] = defaultdict(set)
    for held, acquired in by_pair:
        graph[held].add(acquired)
    out = []
    for cycle in _simple_cycles(dict(graph)):
        closed = _close(cycle, by_pair, creations)
        if closed is not None:
            out.append(closed)
            if len(out) >= MAX_CYCLES:
                break
    return out


@dataclass(frozen=True)
class BlockedCycle:
    """Threads stopped in a circle: each was still waiting for a lock (an attempt) that the next one held."""

    steps: tuple[Attempt, ...]
    held_at: tuple[str | None, ...]
    """Where each thread took the lock the previous one waits for (``philosophers.py line 14``), if recorded."""

    def describe(self, run: Run, names: dict[str, str] | None = None) -> str:
        """``thread 'T-1' holds fork 0 (taken at line 14) and waits for fork 1 at line 16, which thread 'T-2' holds ...``."""
        lock = _lock_namer(run, names)
        count = len(self.steps)
        words = []
        for index, step in enumerate(self.steps[:SHOWN_STEPS]):
            after = self.steps[(index + 1) % count]
            mine = self.steps[index - 1].lock
            taken = f" (taken at {self.held_at[index]})" if self.held_at[index] else ""
            words.append(f"{_thread_words(run, step)} holds {lock(mine)}{taken} and waits for {lock(step.lock)} at "
                         f"{step.where()}, which {_thread_words(run, after)} holds")
        more = f"; and {count - SHOWN_STEPS} more threads, each waiting for the next" if count > SHOWN_STEPS else ""
        return (f"{'; '.join(words)}{more}. Each of these {count} threads waits for a lock the next one holds, a "
                "circle: none of them can ever go on")


def blocked_cycle(run: Run) -> BlockedCycle | None:
    """The threads of a stopped run that waited for each other's locks in a circle, from the attempts still waiting.

    Each thread's last attempt that never ended says which lock it waited for
    and which it held; a thread waits for the threads holding its lock. The first
    circle found, from the earliest attempt; ``None`` when there is none.
    """
    waiting: dict[tuple[int, int, int], Attempt] = {}
    for attempt in attempts(run):
        if not attempt.ended and attempt.mode == "block" and attempt.lock not in attempt.held:
            waiting[attempt.thread] = attempt
    waiting = dict(sorted(waiting.items(), key=lambda item: item[1].start)[:MAX_WAITING])
    holders: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in waiting.values():
        for key in sorted(attempt.held):
            holders[key].append(attempt)
    seen: set[tuple[int, int, int]] = set()
    for first in waiting.values():
        path: dict[tuple[int, int, int], int] = {}
        step: Attempt | None = first
        while step is not None and step.thread not in seen:  # each thread waits for one holder: linear
            seen.add(step.thread)
            path[step.thread] = len(path)
            step = next((h for h in holders.get(step.lock, []) if h.thread != step.thread), None)
        if step is not None and step.thread in path:
            steps = list(path)[path[step.thread]:]
            return _blocked(run, [waiting[thread] for thread in steps])
    return None


def _blocked(run: Run, cycle: list[Attempt]) -> BlockedCycle:
    """Put the cycle's first-started thread first; find where each took the lock the previous one waits for."""
    start = min(range(len(cycle)), key=lambda i: cycle[i].start)
    cycle = cycle[start:] + cycle[:start]
    taken = acquisitions(run)
    return BlockedCycle(
        tuple(cycle),
        tuple(_held_at(taken, step, cycle[index - 1].lock) for index, step in enumerate(cycle)),
    )


# -- a run driven to close its cycles (probe ``close_cycles``) ---------------------------
MAX_PAUSES = 1000
"""Pauses read from a run at most (a process writes 200 at most; more are forged)."""


@dataclass(frozen=True)
class PauseSummary:
    """How the pauses of a ``close_cycles`` run ended (:mod:`grader_inside.probe_pause`)."""

    quiet: int
    """Pauses that ended with every other thread of the process paused or waiting."""
    cut: int
    """Pauses that ended at their time limit, or were skipped once the thread's budget was spent."""
    dropped: int
    """Pauses a process did not record one by one (past its limit), or records that did not parse."""


def pauses(run: Run) -> PauseSummary:
    """Count the pauses of a run made with the ``close_cycles``, ``late_wakeups`` or ``unlocked_uses`` probe (malformed
    records count as ``dropped``)."""
    quiet = cut = dropped = 0
    for event in run.of(events.LK_PAUSE)[:MAX_PAUSES]:
        outcome = event.get("outcome")
        if outcome == "quiet":
            quiet += 1
        elif outcome in ("limit", "spent"):
            cut += 1
        else:
            dropped += 1
    for event in run.of(events.LK_DROPPED):
        count = event.get("count")
        if event.get("what") == "pauses":
            dropped += count if type(count) is int and count > 0 else 1
    return PauseSummary(quiet, cut, dropped)


def stayed_open(provoked: Run) -> bool:
    """Whether a run made with the ``close_cycles`` probe kept every cycle of its lock-order graph open.

    It did when the run returned, no threads were left waiting in a circle, its
    graph has a cycle again (the same code was driven to it), every thread that
    was about to close one paused until all the others were paused or waiting
    (no pause cut at its limit, none unrecorded) and yet none closed: what keeps
    it open (a monitor's own state, say) is something the graph does not see.
    Anything else is not evidence that the cycle cannot close.
    """
    if provoked.ending() is not None or blocked_cycle(provoked) is not None or not order_cycles(provoked):
        return False
    summary = pauses(provoked)
    return summary.quiet > 0 and summary.cut == 0 and summary.dropped == 0
