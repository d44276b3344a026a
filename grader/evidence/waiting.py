"""Blocked or spinning? What one thread did while it should have been waiting. Runs in the pytest process.

With ``probes=["locks"]`` (or ``watch=``), every wait of the student's code is
recorded when it ends: ``Condition.wait``, ``Event.wait``, a semaphore's or a
lock's acquire that had to block, ``Barrier.wait``, and waits inside the
standard library called from the student's code (a ``queue.Queue.get`` that
blocks). :func:`waits` lists them; ``Thread.join`` calls count as waits too.

:func:`activity` judges one thread over a window (for example a traced
``get()`` called on an empty buffer, from ``call.start`` to ``call.end``): the
seconds it spent inside recorded waits, against what it did meanwhile (lock
acquisitions and accesses to watched attributes it made in the window). Load
cannot fake either: a thread that waits on a loaded machine is still inside its
wait, and a thread that polls (``while not self.items: pass``, or
``time.sleep(0.01)`` in a loop) is never inside one. The kernel's CPU time of
the thread's process over the window is kept as a second witness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.evidence.locks import accesses, acquisitions
from grader.evidence.run import Run
from grader.inside import events

__all__ = ["ThreadActivity", "Wait", "activity", "waits"]

BLOCKED_SHARE = 0.5
"""A thread is judged blocked when it spent at least this share of the window inside recorded waits."""


@dataclass(frozen=True)
class Wait:
    """One recorded wait of a thread (or ``count`` of them summed, past the per-process limit)."""

    pid: int
    tid: int
    kind: str
    """``condition``, ``event``, ``semaphore``, ``lock``, ``barrier`` or ``join``."""
    lock: str | None
    start: float
    end: float
    timeout: float | None
    file: str
    line: int
    func: str
    count: int = 1
    seconds: float = 0.0

    def where(self) -> str:
        return f"{self.file} line {self.line}"


def _num(value: Any) -> float | None:
    return float(value) if type(value) in (int, float) else None


def waits(run: Run, pid: int | None = None, tid: int | None = None) -> list[Wait]:
    """The recorded waits (of one process / thread if given), in order of their start."""
    out = []
    for event in run.events:
        kind = event.get("ev")
        if kind not in (events.LK_WAIT, events.LK_WAIT_SUMMARY, events.TH_JOIN):
            continue
        thread = event.get("thread") if kind == events.LK_WAIT_SUMMARY else event.get("tid")
        if type(thread) is not int or (pid is not None and event["pid"] != pid) or (tid is not None and thread != tid):
            continue
        end = float(event["t"])
        if kind == events.TH_JOIN:
            start = _num(event.get("since"))
            if start is not None:
                out.append(Wait(event["pid"], thread, "join", None, start, end, None, "?", 0, "?", 1, end - start))
            continue
        summary = kind == events.LK_WAIT_SUMMARY
        start = _num(event.get("first") if summary else event.get("start"))
        last = _num(event.get("last")) if summary else end
        if start is None or last is None:
            continue
        seconds = _num(event.get("seconds")) if summary else last - start
        lock, line, count = event.get("lock"), event.get("line"), event.get("count")
        out.append(Wait(
            event["pid"], thread, str(event.get("wait", "?")), lock if isinstance(lock, str) else None, start, last,
            _num(event.get("timeout")), str(event.get("file", "?")), line if type(line) is int else 0,
            str(event.get("func", "?")), count if summary and type(count) is int else 1, max(0.0, seconds or 0.0),
        ))
    out.sort(key=lambda w: w.start)
    return out


@dataclass(frozen=True)
class ThreadActivity:
    """What one thread did over a window: waited (blocked) or kept running (spinning, polling)."""

    pid: int
    tid: int
    start: float
    end: float
    waited: float
    """Seconds of the window spent inside recorded waits."""
    waits: tuple[Wait, ...]
    operations: int
    """Lock acquisitions and watched-attribute accesses the thread made in the window (at least)."""
    cpu: float | None
    """CPU seconds the kernel saw the thread's process use in the window (``None``: not sampled)."""

    @property
    def window(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def blocked(self) -> bool:
        """The thread spent at least half of the window inside recorded waits."""
        return self.window > 0 and self.waited >= BLOCKED_SHARE * self.window

    def describe(self) -> str:
        """One phrase: where it waited and for how long, or what it did instead."""
        if self.blocked:
            first = self.waits[0]
            return (f"waited ({first.kind} wait at {first.where()}) for {self.waited:.2f} of the "
                    f"{self.window:.2f} s")
        cpu = f", using {self.cpu:.2f} s of CPU" if self.cpu is not None else ""
        return (f"kept running for {self.window:.2f} s: {self.operations} lock acquisitions and accesses to the "
                f"watched attributes, {self.waited:.2f} s inside recorded waits{cpu}")


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _cpu(run: Run, pid: int, start: float, end: float) -> float | None:
    view = run.kernel
    if view is None or not getattr(view, "precise_cpu", False):
        return None
    inside = view.samples_within(start, end)
    points = [(i, ns) for i, ns, _ in view.cpu.get(pid, []) if i in inside]
    if len(points) < 2:
        return None
    return max(0.0, (points[-1][1] - points[0][1]) / 1e9)


def activity(run: Run, pid: int, tid: int, start: float, end: float) -> ThreadActivity:
    """What thread ``tid`` of process ``pid`` did from ``start`` to ``end`` (see the module's docstring)."""
    chosen = []
    waited = 0.0
    for wait in waits(run, pid, tid):
        share = _overlap(wait.start, wait.end, start, end)
        if share > 0 or start <= wait.start <= end:
            chosen.append(wait)
            waited += min(share, wait.seconds)  # summed waits: at most their total time, spread over first..last
    operations = 0
    for acquisition in acquisitions(run):
        if (acquisition.pid, acquisition.tid) == (pid, tid) and _overlap(acquisition.first, acquisition.last, start, end) > 0:
            operations += acquisition.count
    for access in accesses(run):
        if (access.pid, access.tid) == (pid, tid) and _overlap(access.first, access.last, start, end) > 0:
            operations += access.count
    return ThreadActivity(pid, tid, start, end, waited, tuple(chosen), operations, _cpu(run, pid, start, end))
