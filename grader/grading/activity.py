"""How much CPU each grading uses, and how much the machine leaves idle: what the batch scheduler goes by.

``grader grade -j N`` grades N submissions at once. A submission whose checks
wait (a deadlocked solution waiting for a check's time limit, a solution that
sleeps, a check's ``delay``) holds its CPU only part of the time, so
:func:`grader.grading.batch.grade_all` adds up what the running gradings use and
starts another submission while they leave a part of the N CPUs unused and the
machine has that part idle. The evidence is read from
``/proc`` (Linux): the CPU time used by each grading's process tree (its pytest
process, the sandboxes, the student's processes; what ended and was reaped
counts too) and the machine's idle time. One pass over ``/proc`` per tick serves
every grading. Elsewhere nothing is measured and every grading counts as busy:
exactly N at once.
"""

from __future__ import annotations

import os
import statistics
import time
from collections import deque
from pathlib import Path

__all__ = ["Activity", "MachineIdle", "Typical", "measurable", "process_table", "tree_cpu"]

WARMUP = 2.0
"""Seconds a grading counts as a whole CPU after it starts, whatever its CPU use (pytest starting)."""
WINDOW = 2.0
"""Seconds of history a grading's CPU share is computed over."""
MIN_RATE_SPAN = 0.25
"""Seconds a grading must have been measured over before :meth:`Activity.rate` says less than a whole CPU."""
MIN_IDLE_SPAN = 0.5
"""Seconds the machine must have been sampled over before :meth:`MachineIdle.idle_cpus` says any CPU is idle: a
batch's first gradings often wait more than they compute, and the CPUs they leave idle are used from then on."""

TYPICAL_OF = 8
"""Gradings that ended whose CPU rates :class:`Typical` takes the median of."""
TYPICAL_AFTER = 2
"""Gradings that must have ended before :class:`Typical` says less than a whole CPU."""
TYPICAL_FLOOR = 0.25
"""The least :class:`Typical` says: at most ``jobs / TYPICAL_FLOOR`` young gradings at once."""

_PROC = Path("/proc")


def measurable() -> bool:
    """Whether CPU use can be read here (Linux ``/proc``)."""
    return (_PROC / "stat").is_file() and (_PROC / "self" / "stat").is_file()


def _ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (AttributeError, ValueError, OSError):
        return 100.0


TICKS = _ticks()


def _stat(pid: int) -> tuple[int, float] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), sum(int(v) for v in fields[11:15]) / TICKS  # ppid; utime, stime, cutime, cstime
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int] | None:
    """The children of ``pid`` from ``/proc/PID/task/*/children``; ``None`` where the kernel lacks that file."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.extend(int(v) for v in handle.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{task}"):
                continue  # the thread ended
            return None
        except (OSError, ValueError):
            continue
    return found


def _walk(roots: list[int]) -> dict[int, tuple[int, float]] | None:
    """``roots`` and their descendants; ``None`` where the kernel does not list children."""
    table: dict[int, tuple[int, float]] = {}
    stack = list(roots)
    while stack:
        pid = stack.pop()
        entry = None if pid in table else _stat(pid)
        if entry is None:
            continue
        table[pid] = entry
        children = _children(pid)
        if children is None:
            return None
        stack.extend(children)
    return table


def process_table(roots: list[int] | None = None) -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds of it and of its reaped children).

    With ``roots``, only those processes and their descendants (walked through
    ``/proc/PID/task/*/children``, a few files per process of the trees, not
    one per process of the machine); every process otherwise, or where the
    kernel does not list children.
    """
    if roots is not None:
        walked = _walk(roots)
        if walked is not None:
            return walked
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return {}
    table = {}
    for name in entries:
        entry = _stat(int(name)) if name.isdigit() else None
        if entry is not None:
            table[int(name)] = entry
    return table


def tree_cpu(table: dict[int, tuple[int, float]], root: int) -> float | None:
    """CPU seconds of ``root`` and every descendant in ``table``; ``None`` if ``root`` is gone."""
    if root not in table:
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0.0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total


def _over(samples: deque[tuple[float, float]], seconds: float) -> tuple[float, float]:
    """``(seconds spanned, growth of the value)`` from the latest sample at least ``seconds`` before the last
    one (the first sample if none is) to the last (at least two samples)."""
    last, end = samples[-1]
    first, start = samples[0]
    for when, value in samples:
        if last - when >= seconds:
            first, start = when, value
    return last - first, end - start


class Activity:
    """The CPU use of one grading, sampled by the scheduler: the CPUs it used lately."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self._since = time.monotonic()
        self._samples: deque[tuple[float, float]] = deque()

    def attach(self, pid: int) -> None:
        """The grading's pytest process started (called from the grading's thread)."""
        self._since = time.monotonic()
        self.pid = pid

    def sample(self, table: dict[int, tuple[int, float]], now: float) -> None:
        if self.pid is None:
            return
        cpu = tree_cpu(table, self.pid)
        if cpu is None:
            return
        if self._samples and cpu < self._samples[-1][1]:
            cpu = self._samples[-1][1]  # a process ended between reads: never count backwards
        self._samples.append((now, cpu))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()

    def rate(self, now: float, seconds: float) -> float:
        """CPUs this grading used over about the last ``seconds`` (over what was sampled if less; 1.0 before that).

        Unlike :meth:`share` it does not count a young grading as a whole CPU once it has been
        measured over :data:`MIN_RATE_SPAN`: the scheduler's look at what all the gradings together
        leave unused. Its first sample already says that: the CPU its tree used since its pytest
        process started (a new process, or a fork, starts at 0), over the time since then.
        """
        if self.pid is None or not self._samples:
            return 1.0
        if len(self._samples) < 2:
            when, used = self._samples[0]
            span = when - self._since
        else:
            span, used = _over(self._samples, seconds)
        return 1.0 if span < MIN_RATE_SPAN else used / span

    def lifetime_rate(self) -> float | None:
        """CPUs this grading used on average from its start to its last sample; ``None`` if measured for too short."""
        if self.pid is None or not self._samples:
            return None
        when, used = self._samples[-1]
        span = when - self._since
        return None if span < MIN_RATE_SPAN else used / span

    def share(self, now: float, young: float = 1.0) -> float:
        """CPUs this grading used on average over the last :data:`WINDOW` seconds (``young`` while it starts up).

        ``young``: what a grading is counted as before it was measured that long, a whole CPU unless the
        caller knows better (:class:`Typical`).
        """
        if self.pid is None or now - self._since < WARMUP or len(self._samples) < 2:
            return young
        (first, cpu0), (last, cpu1) = self._samples[0], self._samples[-1]
        if last - first < WINDOW * 0.9:
            return young
        return (cpu1 - cpu0) / (last - first)  # never negative: sample() does not count backwards


class Typical:
    """What the gradings of this batch used, start to end: what a grading that just started will likely use.

    The median of the lifetime CPU rates (:meth:`Activity.lifetime_rate`) of the last
    :data:`TYPICAL_OF` gradings that ended, and a whole CPU until :data:`TYPICAL_AFTER` have. Never less
    than :data:`TYPICAL_FLOOR`. A class's gradings are alike (the same checks of the same assignment), so
    one that lasts a second or two, and so is young for all its life, counts as what its
    predecessors used instead of a whole CPU.
    """

    def __init__(self) -> None:
        self._rates: deque[float] = deque(maxlen=TYPICAL_OF)

    def ended(self, activity: Activity) -> None:
        rate = activity.lifetime_rate()
        if rate is not None:
            self._rates.append(rate)

    def rate(self) -> float:
        if len(self._rates) < TYPICAL_AFTER:
            return 1.0
        return min(1.0, max(TYPICAL_FLOOR, statistics.median(self._rates)))


class MachineIdle:
    """Idle CPUs of the whole machine over the last :data:`WINDOW` seconds (from ``/proc/stat``)."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()

    @staticmethod
    def _idle_seconds() -> float | None:
        try:
            with open("/proc/stat", "rb") as handle:
                fields = handle.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != b"cpu":
            return None
        try:
            return (int(fields[4]) + int(fields[5])) / TICKS  # idle + iowait
        except (IndexError, ValueError):
            return None

    def sample(self, now: float) -> None:
        idle = self._idle_seconds()
        if idle is None:
            return
        self._samples.append((now, idle))
        while len(self._samples) > 2 and now - self._samples[1][0] >= WINDOW:
            self._samples.popleft()

    def idle_since(self, when: float) -> float:
        """How many CPUs were idle on average from the last sample taken at or before ``when`` to the latest one.

        0 if there is no such sample, or none after it."""
        if not self._samples or self._samples[0][0] > when:
            return 0.0
        span, idle = _over(self._samples, self._samples[-1][0] - when)
        return idle / span if span > 0 else 0.0

    def idle_cpus(self, seconds: float = WINDOW) -> float:
        """How many CPUs were idle on average over about the last ``seconds`` (at most :data:`WINDOW`).

        Over what was sampled when that is less, once it spans :data:`MIN_IDLE_SPAN`; 0 before."""
        if len(self._samples) < 2:
            return 0.0
        span, idle = _over(self._samples, seconds)
        return 0.0 if span < min(seconds, WINDOW, MIN_IDLE_SPAN) * 0.9 else idle / span
