"""Attempts to take a lock, and locks seen free: the two records that say whether an acquisition can wait.

Runs on the untrusted side, in every process of the sandbox, with the ``locks``
probe (:mod:`grader_inside.probe_locks` keeps which locks each thread holds and
since when; :mod:`grader_inside.probe_sync` and the ``multiprocessing`` half of
``probe_locks`` call this module).

- **Attempts** (``lk_want``): an acquisition that a first try did not get waits
  :data:`WANT_AFTER` seconds; if it still has not the lock, the attempt is written
  at once ("start": the lock wanted, the locks this thread holds, the line), then
  its end when the acquire returns. A run that deadlocks is killed with its
  acquisitions still waiting, which the acquisition records (written when an
  acquire returns) never show; the attempts do, so the lock-order graph and the
  hang diagnosis still see who held what and waited for what. Short waits, by
  far the most common, write nothing (a busy lock costs no stream traffic).
- **Seen free** (``free_under`` of an acquisition): a ``threading.Lock`` whose
  ``locked()`` this thread saw ``False`` while it held other locks, then acquired
  while still holding them without a break, carries the names of those locks. A
  monitor that takes a fork only after ``wait_for`` saw it free under the
  Condition's lock is thus told from one that takes the fork blindly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from . import events, probe_locks, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

WANT_AFTER = 0.05
"""Seconds a blocked acquisition waits before it is written as an attempt."""
WANT_LIMIT = 500
"""Attempts written per process; the rest are counted (``lk_dropped``, what "lock attempts")."""

_mutex = threading.Lock()
_wants = 0
_dropped = 0


def note_seen(key: str, busy: bool) -> None:
    """This thread asked whether the ``Lock`` ``key`` was taken (``lock.locked()``) and was told ``busy``."""
    if probe_locks._is_internal():
        return
    seen = probe_locks._internal.__dict__.setdefault("seen_free", {})
    if busy:
        seen.pop(key, None)
    else:
        seen[key] = probe_locks.hold_stamps()


def free_under(key: str) -> tuple[str, ...]:
    """The locks this thread has held without a break since it last saw ``key`` free (forgotten by this call).

    When every acquisition of ``key`` holds one of them, the acquisition that
    follows cannot wait: no other thread could take ``key`` in between.
    """
    seen = probe_locks._internal.__dict__.get("seen_free", {}).pop(key, None)
    if not seen:
        return ()
    now = probe_locks.hold_stamps()
    return tuple(sorted(k for k, stamp in seen.items() if now.get(k) == stamp))


def acquire_blocking(key: str, wait: Callable[[float | None], Any], timeout: float | None, mode: str) -> bool:
    """Wait in ``wait(timeout)`` (``None``: no limit) for the lock ``key``, which a first try did not get.

    A wait that lasts past :data:`WANT_AFTER` is written as an attempt first, and
    its end once it ends.
    """
    start = probes._monotonic()
    if wait(WANT_AFTER if timeout is None else min(WANT_AFTER, timeout)):
        return True
    left = None if timeout is None else timeout - (probes._monotonic() - start)
    if left is not None and left <= 0:
        return False
    number = _note_want(key, mode)
    got = False
    try:
        got = bool(wait(left))
        return got
    finally:
        if number:
            probes.record(events.LK_WANT, phase="end", want=number, ok=got)


def _note_want(key: str, mode: str) -> int:
    """Write one attempt of this thread (``lk_want`` "start"); its number in this process, 0 past the limit."""
    global _wants, _dropped
    if probe_locks._is_internal():
        return 0
    with _mutex:
        if _wants >= WANT_LIMIT:
            _dropped += 1
            return 0
        _wants += 1
        number = _wants
    file, line, func, student = probe_locks._site(3)
    probes.record(events.LK_WANT, phase="start", want=number, lock=key, held=list(probe_locks.held_locks()),
                  mode=mode, file=file, line=line, func=func, student=student,
                  thread_no=probe_locks._thread_number(), name=threading.current_thread().name)
    return number


def flush() -> None:
    """Write how many attempts were not written past :data:`WANT_LIMIT`."""
    global _dropped
    with _mutex:
        dropped, _dropped = _dropped, 0
    if dropped:
        probes.record(events.LK_DROPPED, what="lock attempts", count=dropped)

