"""How long an assignment's checks took, to size its check workers: last time here, or so far in a batch.

Two check workers end a submission's checks sooner where one check waits for long (a ``main()``
whose threads sleep a second or more), because the other worker goes on with the rest. They also
cost CPU whatever the checks do: each worker is a pytest session of its own, and the pytest process
becomes pytest-xdist's controller (0.1-0.2 s of CPU for two workers on a two-CPU machine,
``docs/scale.md``). Where all the checks together take under
:data:`ONE_WORKER_BELOW`, one worker ends them as soon or sooner, with that CPU saved.

So ``grader check`` keeps, for each assignment, the checks' summed duration of its last grading, in
``check-timings.json`` in the grader's cache folder (:func:`grader.grading.grade.bytecode_cache`:
this user's, writable by nobody else; with ``GRADER_BYTECODE_CACHE=off`` nothing is kept), or in the
file ``GRADER_CHECK_TIMINGS`` names (``off``: nothing is kept or read). The next check of the same
assignment runs its checks one after another where that sum was under :data:`ONE_WORKER_BELOW`,
and side by side otherwise or where nothing is known. ``--check-workers`` always wins.

Side by side, pytest-xdist hands the checks out in their order, and the order matters: hello_threads'
two longest checks (2.0 s and 1.3 s) come second and eighth in their file, and ran one after the
other on one worker while the other idled. The entry also keeps each check's duration in the last
check run in the checks' own order, and how long the whole grading took (``walls``) in each of two
orders at that number of workers: the checks' own, and longest first
(:func:`grader.grading.order.longest_first`). :func:`plan` picks the order that ended sooner, trying
longest first once the checks' own order has been measured. Which order is sooner cannot be told
from the durations alone: checks share runs (:meth:`grader.checks.Submission.shared_call`), and a
check that reads a run another worker is still making waits for it. bounded_buffer's checks, for
one, ended 0.4 s later longest first, and hello_processes' 0.7 s sooner (``docs/scale.md``).
Neither the number of workers nor the order ever changes a verdict: only when each check runs.

An entry is keyed by the assignment's name, folder, and the contents of the files beside its checks
(``*.py``, ``*.toml``): an assignment whose checks changed starts again with no entry. The file
holds at most :data:`KEEP` assignments; one that does not parse is ignored and written anew.

In a batch (``grader grade``), the submissions of the tail (:func:`grader.grading.batch.in_the_tail`)
get more check workers, so that the CPUs the others leave do not idle while one submission's checks
run one after another. That pays where checks take long (a ``main()`` that sleeps, a child that
never ends), and costs more than it saves where they are quick. :class:`ClassTimings` keeps the
summed check durations of the batch's gradings that ended: the tail gets its workers while fewer
than :data:`KNOWN_AFTER` of the same assignment ended, or where their median is at least
:data:`TAIL_WORKERS_FROM`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.exporters.files import write_atomic
from grader.grading.grade import bytecode_cache
from grader.grading.order import longest_first
from grader.model.assignment import Assignment
from grader.model.results import SubmissionResult

ONE_WORKER_BELOW = 1.0
"""Seconds: checks that took less than this in all, last time, run one after another the next time."""
FILE = "check-timings.json"
"""The file, in the cache folder."""
ENV = "GRADER_CHECK_TIMINGS"
"""Environment variable: the file to keep the timings in instead, or ``off``."""
KEEP = 64
"""Assignments kept in the file; the ones graded longest ago go first."""


def assignment_key(assignment: Assignment) -> str:
    """The assignment's name, folder and the contents of its top-level ``*.py`` and ``*.toml`` files, hashed."""
    digest = hashlib.sha256(f"{assignment.name}\0{Path(assignment.path).resolve()}".encode())
    for path in sorted(Path(assignment.path).glob("*")):
        if path.suffix in (".py", ".toml") and path.is_file():
            try:
                digest.update(f"\0{path.name}\0".encode() + path.read_bytes())
            except OSError:
                continue
    return digest.hexdigest()


def _file() -> Path | None:
    chosen = os.environ.get(ENV, "")
    if chosen.lower() == "off":
        return None
    if chosen:
        return Path(chosen)
    folder = bytecode_cache()
    return None if folder is None else Path(folder) / FILE


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        key: entry for key, entry in data.items()
        if isinstance(entry, dict) and _number(entry.get("seconds")) and _number(entry.get("when"))
    }


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _entry(assignment: Assignment) -> dict[str, Any] | None:
    path = _file()
    return None if path is None else _read(path).get(assignment_key(assignment))


def last_seconds(assignment: Assignment) -> float | None:
    """The checks' summed duration in the last ``grader check`` of ``assignment`` here, or ``None``."""
    entry = _entry(assignment)
    return None if entry is None else float(entry["seconds"])


def _numbers(value: object, valid: Callable[[str], bool]) -> dict[str, float]:
    """The items of a mapping read from the file whose key is ``valid`` and whose value is a number of seconds."""
    if not isinstance(value, dict):
        return {}
    return {str(k): float(v) for k, v in value.items() if isinstance(k, str) and valid(k) and _number(v)}


def _checks(entry: dict[str, Any] | None) -> dict[str, float]:
    return _numbers(entry.get("checks") if entry else None, str.isidentifier)


def check_seconds(assignment: Assignment) -> dict[str, float]:
    """Each check's duration (check id -> seconds) in the last ``grader check`` of ``assignment`` here in
    the checks' own order; empty where none is known. An id that is not a Python name is left out."""
    return _checks(_entry(assignment))


ORDERS = ("own", "longest")
"""The two orders :func:`plan` chooses between: the checks' own (as collected), and longest first."""


@dataclass(frozen=True)
class Plan:
    """How a ``grader check`` runs its checks: how many at a time, and which start first."""

    workers: int
    first: tuple[str, ...] = ()
    """Check ids that start first, in that order (``()``: the checks' own order)."""

    @property
    def order(self) -> str:
        return ORDERS[1] if self.first else ORDERS[0]


def _walls(entry: dict[str, Any] | None, workers: int) -> dict[str, float]:
    walls = entry.get("walls") if entry else None
    return _numbers(walls.get(str(workers)) if isinstance(walls, dict) else None, ORDERS.__contains__)


def plan(assignment: Assignment, default: int, chosen: int | None = None) -> Plan:
    """How the next ``grader check`` of ``assignment`` runs its checks, from one read of the file.

    ``chosen`` workers (``--check-workers``) where given, else one where the checks took under
    :data:`ONE_WORKER_BELOW` in all last time, and ``default`` otherwise. Side
    by side, longest first where that order ended sooner than the checks' own last time: longest
    first needs each check's duration and the grading's duration in the checks' own order at this
    number of workers; until it has ended once, it is tried. An order chosen stays while it is not
    slower than the last grading in the other one. One worker has no order to choose.
    """
    entry = _entry(assignment)
    workers = chosen if chosen is not None else _workers(entry, default)
    first = tuple(longest_first(_checks(entry), workers))
    walls = _walls(entry, workers)
    if not first or "own" not in walls:  # nothing to order by, or the checks' own order not measured here yet
        return Plan(workers)
    if "longest" in walls and walls["longest"] >= walls["own"]:
        return Plan(workers)
    return Plan(workers, first)


def _workers(entry: dict[str, Any] | None, default: int) -> int:
    """1 where the last check's checks took under :data:`ONE_WORKER_BELOW` in all, else ``default``."""
    return 1 if entry is not None and float(entry["seconds"]) < ONE_WORKER_BELOW else default


TAIL_WORKERS_FROM = ONE_WORKER_BELOW
"""Seconds: the median summed check durations of a batch's gradings of an assignment from which its tail gets workers.

Measured in gradings beside another (``-j 2`` on two CPUs), where checks take longer than alone:
duplex_pipe's, isolation's and dining_philosophers' take 0.4-0.8 s in all, and their classes graded
as fast or faster with one check worker in the tail, with 4-9 % less CPU; locked_counter's take
1.2 s, and its class (two students' code deadlocks) graded 3-7 % slower without the tail's workers."""
KNOWN_AFTER = 2
"""Gradings of an assignment that must have ended before :class:`ClassTimings` drops the tail's workers."""


def summed_duration(result: SubmissionResult) -> float | None:
    """The summed durations of ``result``'s checks, or ``None`` where it has none (or was not graded)."""
    if not result.graded or not result.checks:
        return None
    seconds = sum(max(0.0, float(check.duration)) for check in result.checks)
    return seconds if math.isfinite(seconds) else None


class ClassTimings:
    """The summed check durations of a batch's gradings that ended, by assignment."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def ended(self, assignment: str, result: SubmissionResult) -> None:
        seconds = summed_duration(result)
        if seconds is not None:
            self.sums.setdefault(assignment, []).append(seconds)

    def tail_pays(self, assignment: str) -> bool:
        """Whether the tail's check workers pay for ``assignment``: too little is known, or its checks take long."""
        sums = self.sums.get(assignment, [])
        return len(sums) < KNOWN_AFTER or statistics.median(sums) >= TAIL_WORKERS_FROM


def remember(assignment: Assignment, result: SubmissionResult, plan: Plan | None = None) -> None:
    """Keep how long ``result``'s checks took, graded as ``plan`` says, for the next check (nothing if none ran,
    or no cache): their summed duration; and where every check passed, each one's (in the checks' own
    order) and the whole grading's (in its order, side by side). A submission that hangs or crashes is
    no measure of how long the checks take, and one student's code changes from one check to the next."""
    path = _file()
    seconds = summed_duration(result)
    if path is None or seconds is None:
        return
    entries = _read(path)
    key = assignment_key(assignment)
    old = entries.get(key) or {}
    checks = _checks(old)
    passed = all(check.passed for check in result.checks)  # a failed check's duration says little of the next
    if passed and (plan is None or not plan.first):  # each check's duration in the checks' own order
        checks = {}
        for check in result.checks:  # a check graded more than once (parametrized) counts its longest
            checks[check.id] = max(checks.get(check.id, 0.0), round(max(0.0, float(check.duration)), 3))
    walls = dict(old["walls"]) if isinstance(old.get("walls"), dict) else {}
    if passed and plan is not None and plan.workers > 1 and _number(result.duration):
        walls[str(plan.workers)] = {**_walls(old, plan.workers), plan.order: round(float(result.duration), 3)}
    entries[key] = {"seconds": round(seconds, 3), "when": time.time(), "checks": checks, "walls": walls}
    kept = dict(sorted(entries.items(), key=lambda item: item[1]["when"])[-KEEP:])
    try:
        write_atomic(path, json.dumps(kept, indent=0), mode=0o600)
    except OSError:  # a full disk or a folder gone: the next check runs with the default
        pass


__all__ = [
    "ENV", "FILE", "KEEP", "KNOWN_AFTER", "ONE_WORKER_BELOW", "TAIL_WORKERS_FROM", "ClassTimings", "assignment_key",
    "ORDERS", "Plan", "check_seconds", "last_seconds", "plan", "remember", "summed_duration",
]
