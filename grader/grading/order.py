"""The order in which a batch starts its submissions (those whose code sleeps early), and a grading its checks.

A batch grades ``-j`` CPUs' worth of submissions at a time, in the class's order, and reports them in
that order whatever the order they started in. Most gradings of a class take about as long as each
other. Those that take longest are those whose own code waits: a loop that polls with
``time.sleep``, a worker that sleeps between items. Their checks spend seconds waiting, one after the
other, with next to no CPU. Started late, such a grading runs on alone after every other has ended,
and the class waits for it with idle CPUs; started early, it waits beside the others. So the
submissions whose Python source calls something named ``sleep`` start right after the batch's first
few, before the others (:func:`start_order`).

Only the order changes: every grading has its own checks, sandboxes and time limits, so no grade
depends on it. The source is read as bytes, never imported or parsed: at most :data:`FILES` ``.py``
files of a folder, among those the search for the student's module looks at
(:func:`grader.model.locate.files_of`: no links, no virtual environment), :data:`READ` bytes of each, and
only a regular file (a named pipe is not waited on).

A grading whose checks run side by side (pytest-xdist's check workers) hands them out in their order,
and a worker that runs one check already holds the next. Collected in the order of their file, the
two longest checks of hello_threads ran one after the other on one worker while the other worker
idled for a second. Where the checks' durations are known (the last ``grader check`` of the
assignment, :mod:`grader.grading.timings`), :func:`longest_first` orders them so that each worker
starts with one of the longest, holding one of the shortest next, and then the rest from the
longest; :func:`grader.grading.timings.plan` uses that order where it ended sooner than the checks'
own. Only when each check runs changes, never a verdict.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from itertools import islice
from pathlib import Path

from grader.model.locate import files_of

__all__ = ["FILES", "LEAD_PER_JOB", "READ", "longest_first", "sleeps", "start_order"]

SLEEP_CALL = re.compile(rb"\bsleep\s*\(")
"""A call of something named ``sleep`` (``time.sleep(...)``, ``sleep(...)``, ``asyncio.sleep(...)``), or its ``def``."""
LEAD_PER_JOB = 2
"""Submissions that start in the class's order before those that sleep, per job (``-j``): see :func:`start_order`."""
FILES = 50
"""``.py`` files read at most in one submission folder (the first, sorted by path)."""
READ = 1 << 20
"""Bytes read at most of one file."""


def _sources(path: Path) -> list[Path]:
    if path.is_symlink():
        return []
    if path.is_file():
        return [path] if path.suffix == ".py" else []
    return list(islice((file for file in files_of(path) if file.suffix == ".py"), FILES))


def sleeps(path: Path) -> bool:
    """Whether the Python source of the submission at ``path`` (a ``.py`` file or a folder) calls a ``sleep``."""
    for source in _sources(path):
        try:
            fd = os.open(source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            continue
        with os.fdopen(fd, "rb") as handle:
            try:
                if stat.S_ISREG(os.fstat(fd).st_mode) and SLEEP_CALL.search(handle.read(READ)):
                    return True
            except OSError:
                continue
    return False


def start_order(paths: Sequence[Path | None], jobs: int = 1) -> list[int]:
    """The indexes of ``paths`` in the order their gradings start: those that :func:`sleeps` early.

    The first :data:`LEAD_PER_JOB` × ``jobs`` start first, in the class's order: a batch learns from its
    first gradings what one costs, and until two have ended it counts each grading starting as a whole
    CPU (:class:`grader.grading.activity.Typical`), so submissions that sleep would hold CPUs they do not
    use. Then, of the others, those that sleep, then the rest, each in the class's order. ``None`` (a
    submission that is not graded, its problem reported) is one of the rest.
    """
    lead = min(len(paths), LEAD_PER_JOB * max(1, jobs))
    later = range(lead, len(paths))
    sleepy = {i for i in later if (path := paths[i]) is not None and sleeps(path)}
    return [*range(lead), *(i for i in later if i in sleepy), *(i for i in later if i not in sleepy)]


def longest_first(seconds: Mapping[str, float], workers: int) -> list[str]:
    """The check ids of ``seconds`` (id -> seconds it took) in the order ``workers`` check workers should get them.

    pytest-xdist's load scheduling (3.x) hands each worker, to begin with, a run of consecutive checks:
    one each where there are fewer than two per worker, else ``max(2, checks // workers // 4)``. Then
    it hands out the next in the order, one at a time, to the worker that finished one. So each
    worker's first run is one of the ``workers`` longest checks followed by the shortest ones left,
    and the rest follow from the longest. Ties go by id, so the same durations give the same order.
    Empty for one worker, or fewer than two checks known.
    """
    if workers < 2 or len(seconds) < 2:
        return []
    ranked = sorted(seconds, key=lambda check: (-seconds[check], check))
    if len(ranked) < 2 * workers:
        return ranked
    run = max(2, len(ranked) // workers // 4)
    longest, rest = ranked[:workers], ranked[workers:]
    order: list[str] = []
    for check in longest:
        order.append(check)
        order.extend(rest.pop() for _ in range(min(run - 1, len(rest))))
    return order + rest
