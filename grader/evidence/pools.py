"""Evidence of ``multiprocessing.Pool`` runs, as typed views a check can query.

Runs in the pytest process; the trusted half of :mod:`grader.inside.probe_pools`:
the ``pools`` probe records the life of every pool (created with how many
workers, closed, terminated, joined, or garbage-collected while still
running), and the grader's instrumented task records where and when it ran
(and ``probe_pools.mark(label)`` in a driver, when each part of a driver
began). Pass ``probes=["pools"]`` to the run and hand the
:class:`grader.evidence.Run` to the functions here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.evidence.run import Run, max_overlap
from grader.inside import events, wire

__all__ = ["PoolLife", "PoolTask", "pool_marks", "pool_tasks", "pools", "worker_peak"]


@dataclass(frozen=True)
class PoolTask:
    """One call of the grader's instrumented task (``probe_pools.task``)."""

    item: Any
    pid: int
    tid: int
    thread: str
    start: float
    end: float | None
    error: str | None
    waits: dict[str, Any] = field(default_factory=dict)

    def waited(self, name: str) -> dict[str, Any]:
        """The outcome of one of the task's waits (``meet``, ``hold``), or ``{}``."""
        value = self.waits.get(name)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class PoolLife:
    """A ``multiprocessing.pool.Pool`` (or ``ThreadPool``) and what was done with it."""

    id: str
    pid: int
    kind: str
    cls: str
    processes: int | None
    workers: tuple[int, ...]
    created: float
    closed: float | None
    terminated: float | None
    joined: float | None
    unclosed: float | None

    @property
    def shut_down(self) -> float | None:
        """When the code stopped the pool itself: ``terminate()``, or ``close()`` then ``join()``."""
        if self.terminated is not None:
            return self.terminated
        if self.closed is not None and self.joined is not None:
            return self.joined
        return None


def _decode(data: Any) -> Any:
    try:
        return wire.decode(data)
    except (wire.WireError, TypeError, ValueError):
        return {"$undecodable": True}


def _between(found: list[dict[str, Any]], start: float | None, end: float | None) -> list[dict[str, Any]]:
    """The events with ``start <= t < end`` (``None``: unbounded)."""
    return [
        e for e in found if (start is None or e["t"] >= start) and (end is None or e["t"] < end)
    ]


def pool_tasks(run: Run, start: float | None = None, end: float | None = None) -> list[PoolTask]:
    """Calls of the grader's task, in start order (optionally only those started in ``[start, end)``)."""
    ends: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for e in run.of(events.POOL_TASK):
        if e.get("phase") == "end":
            ends.setdefault((e["pid"], int(e.get("tid", 0))), []).append(e)
    out = []
    for e in _between(run.of(events.POOL_TASK), start, end):
        if e.get("phase") != "start":
            continue
        key = (e["pid"], int(e.get("tid", 0)))
        finish = next((f for f in ends.get(key, []) if f["t"] >= e["t"]), None)
        if finish is not None:
            ends[key].remove(finish)
        waits: dict[str, Any] = {}
        if finish is not None and isinstance(finish.get("waits"), dict):
            waits = finish["waits"]
        out.append(
            PoolTask(
                item=_decode(e.get("item")),
                pid=e["pid"],
                tid=int(e.get("tid", 0)),
                thread=str(e.get("thread", "")),
                start=e["t"],
                end=finish["t"] if finish is not None else None,
                error=str(finish["error"]) if finish is not None and finish.get("error") else None,
                waits=waits,
            )
        )
    return out


def pools(run: Run, start: float | None = None, end: float | None = None) -> list[PoolLife]:
    """Pools created (in ``[start, end)``, default the whole run), in creation order."""

    def first(kind: str, pool: str) -> float | None:
        return next((e["t"] for e in run.of(kind) if e.get("pool") == pool), None)

    out = []
    for e in _between(run.of(events.POOL_NEW), start, end):
        pool = e.get("pool")
        if not isinstance(pool, str):
            continue
        workers = e.get("workers")
        out.append(
            PoolLife(
                id=pool,
                pid=e["pid"],
                kind=str(e.get("worker_kind", "processes")),
                cls=str(e.get("cls", "Pool")),
                processes=e["processes"] if type(e.get("processes")) is int else None,
                workers=tuple(w for w in workers if type(w) is int) if isinstance(workers, list) else (),
                created=e["t"],
                closed=first(events.POOL_CLOSE, pool),
                terminated=first(events.POOL_TERMINATE, pool),
                joined=first(events.POOL_JOIN, pool),
                unclosed=first(events.POOL_UNCLOSED, pool),
            )
        )
    return out


def pool_marks(run: Run, pid: int) -> dict[Any, float]:
    """label -> time of the last ``probe_pools.mark(label)`` made in process ``pid`` (a driver's own process)."""
    return {e.get("label"): e["t"] for e in run.of(events.POOL_MARK) if e["pid"] == pid}


def worker_peak(run: Run, parent: int, start: float | None = None, end: float | None = None) -> int:
    """The most ``multiprocessing`` children of ``parent`` alive at once during ``[start, end)``.

    A child counts from its start (or ``start``, if it was started earlier, say by a pool made at
    import) to its join, or the end of its pool's ``terminate()`` or ``join()``, or else ``end``.
    """
    low = start if start is not None else float("-inf")
    high = end if end is not None else float("inf")
    stopped: dict[int, float] = {}  # terminate() joins only the workers it finds alive
    for pool in pools(run):
        stop = pool.terminated if pool.terminated is not None else pool.joined
        if stop is not None:
            stopped.update((pid, stop) for pid in pool.workers)
    spans = []
    for child in run.child_processes(parent=parent):
        finish = child.joined if child.joined is not None else stopped.get(child.pid, high)
        if child.started < high and finish > low:
            spans.append((max(child.started, low), min(finish, high)))
    return max_overlap(spans)
