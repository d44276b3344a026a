"""The ``threading`` half of the lock probe: locks, conditions, semaphores, events and barriers.

Runs on the untrusted side, in every process of the sandbox, installed by the
``locks`` probe (:mod:`grader_inside.probe_locks`, which keeps the one record
of which locks each thread holds). Every ``threading`` primitive *created by the
student's code* (the line that made it is in a file of the submission) is
recorded:

- ``Lock`` and ``RLock`` (C types that cannot be patched) are made as thin
  wrappers around the real lock; a ``Condition`` made without a lock gets such
  an ``RLock``, so ``with cond:``, ``cond.acquire()`` and the lock a wait
  releases and re-acquires are one lock in the evidence;
- ``Semaphore``, ``BoundedSemaphore``, ``Event`` and ``Barrier`` (classes of
  ``threading.py``) are patched in place, so ``isinstance`` and subclasses keep
  working, and objects the standard library makes for itself stay silent.

Each acquisition is counted with the locks already held (the lock-order graph),
its mode (``block``, ``try`` for ``blocking=False``, ``timeout``) and the line of
the student's code; ``notify``/``notify_all``, ``Event.set``/``clear`` and a
semaphore's ``release`` are counted too (``lk_op``, aggregated like accesses).
Waits (``Condition.wait``, ``Event.wait``, a semaphore's or a lock's acquire
that had to block, ``Barrier.wait``) are written when they end (``lk_wait``:
start, timeout, result), the first :data:`WAIT_LIMIT` of each process one by
one and the rest summed per thread and line (``lk_wait_summary``). Waits of
objects the standard library made are recorded too when the student's code
called them (a ``queue.Queue.get`` that blocks is a wait), so a thread that
blocked can be told from one that kept running.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading

from . import events, probe_locks, probe_pause, probe_wants, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

WAIT_LIMIT = 1000

_keys = itertools.count(1)
_mutex = threading.Lock()
_local = threading.local()
_waits_written = 0
_wait_summary: dict[tuple[Any, ...], list[Any]] = {}
_THREADING_FILE = os.path.abspath(threading.__file__)
_threading_code: dict[Any, bool] = {}
_ORIGINAL: dict[str, Any] = {}


def _new_key() -> str:
    return f"th:{probes._getpid()}:{next(_keys)}"


def _in_threading(code: Any) -> bool:
    """Whether ``code`` is ``threading.py``'s (remembered per code object, as the probes' other frame tests)."""
    known = _threading_code.get(code)
    if known is None:
        known = _threading_code[code] = os.path.abspath(code.co_filename) == _THREADING_FILE
    return known


def _made_by_student(depth: int, *, past_threading: bool = False) -> bool:
    """Whether the caller ``depth`` frames up is the student's code (``past_threading``: the first outside ``threading.py``).

    Only the direct caller counts otherwise: the lock an ``Event`` makes for
    itself is made by ``threading.py``, even when the student made the event.
    """
    try:
        frame: Any = sys._getframe(depth + 1)
    except ValueError:
        return False
    while past_threading and frame is not None and _in_threading(frame.f_code):
        frame = frame.f_back
    return frame is not None and probe_locks._is_student(frame.f_code)


def _from_threading(depth: int) -> bool:
    """Whether the caller ``depth`` frames up is ``threading.py`` itself (``Thread.start`` waiting for its thread)."""
    try:
        return _in_threading(sys._getframe(depth + 1).f_code)
    except ValueError:
        return False


def _mode(blocking: bool, timeout: float | None) -> str:
    if not blocking:
        return "try"
    return "block" if timeout is None or timeout < 0 else "timeout"


# -- waits ---------------------------------------------------------------------------
def _outer() -> int:
    return getattr(_local, "outer", 0)


def note_wait(kind: str, key: str | None, start: float, timeout: float | None, ok: bool, traced: bool) -> None:
    """Record one wait that ended (``lk_wait``), or sum it once past :data:`WAIT_LIMIT` (``lk_wait_summary``)."""
    global _waits_written
    file, line, func, student = probe_locks._site(2)
    if not (traced or student):
        return
    end = probes._monotonic()
    timed = timeout is not None and timeout >= 0
    with _mutex:
        one_by_one = _waits_written < WAIT_LIMIT
        if one_by_one:
            _waits_written += 1
        else:
            entry_key = (kind, key, file, line, func, student, timed, probes._get_ident())
            entry = _wait_summary.setdefault(entry_key, [0, 0.0, start, end])
            entry[0] += 1
            entry[1] += end - start
            entry[3] = end
    if one_by_one:
        probes.record(events.LK_WAIT, wait=kind, lock=key, start=start, timeout=timeout if timed else None,
                      ok=bool(ok), file=file, line=line, func=func, student=student)


def flush() -> None:
    """Write the summed waits (``lk_wait_summary``) and start afresh."""
    global _wait_summary
    with _mutex:
        entries, _wait_summary = _wait_summary, {}
    for (kind, key, file, line, func, student, timed, tid), (count, seconds, first, last) in entries.items():
        probes.record(events.LK_WAIT_SUMMARY, wait=kind, lock=key, file=file, line=line, func=func, student=student,
                      timed=timed, thread=tid, count=count, seconds=seconds, first=first, last=last)


def _waiting(kind: str, key: str | None, timeout: float | None, traced: bool, wait: Any, *args: Any,
             still: Any = None) -> Any:
    """Call ``wait(*args)`` as the outermost recorded wait of this thread, and record it.

    ``still`` is the mark of the wait for the ``close_cycles`` probe
    (:class:`grader_inside.probe_pause.waiting`).
    """
    _local.outer = _outer() + 1
    start = probes._monotonic()
    ok: Any = False
    try:
        with still or contextlib.nullcontext():
            ok = wait(*args)
        return ok
    finally:
        _local.outer -= 1
        note_wait(kind, key, start, timeout, bool(ok), traced)


# -- Lock and RLock --------------------------------------------------------------------
class RecordedLock:
    """A ``threading.Lock`` made by the student's code: the real lock, with every acquisition recorded."""

    _grader_kind = "Lock"

    def __init__(self, raw: Any, key: str) -> None:
        self._raw = raw
        self._grader_key = key

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if blocking:
            probe_pause.before_acquire(self._grader_key)
        free_under = probe_wants.free_under(self._grader_key) if blocking else ()
        got = self._raw.acquire(blocking, timeout) if not blocking else self._raw.acquire(False)  # as the real one
        if not got and blocking:
            start = probes._monotonic()
            _local.outer = _outer() + 1
            try:
                with probe_pause.waiting(self._busy, timeout if timeout is not None and timeout >= 0 else None):
                    got = self._wait(_mode(blocking, timeout), timeout)
            finally:
                _local.outer -= 1
                note_wait("lock", self._grader_key, start, timeout, got, True)
        if got:
            probe_locks._note_acquire(self._grader_key, _mode(blocking, timeout), free_under)
        return bool(got)

    def _wait(self, mode: str, timeout: float = -1) -> bool:
        """Block for the lock (a first try did not get it), written as an attempt if it lasts."""
        limit = None if timeout is None or timeout == -1 else timeout  # another negative one raises, as the real one
        return probe_wants.acquire_blocking(
            self._grader_key, lambda left: self._raw.acquire(True, -1 if left is None else left), limit, mode)

    def _busy(self) -> bool:
        return bool(self._raw.locked())

    def release(self) -> None:
        self._raw.release()
        probe_locks._note_release(self._grader_key)

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *args: Any) -> None:
        self.release()

    def locked(self) -> bool:
        busy = bool(self._raw.locked())
        probe_wants.note_seen(self._grader_key, busy)
        return busy

    def _at_fork_reinit(self) -> None:
        self._raw._at_fork_reinit()

    # what a Condition built on this lock calls around a wait
    def _is_owned(self) -> bool:
        return bool(self._raw.locked())

    def _release_save(self) -> Any:
        self._raw.release()
        return probe_locks.drop_held(self._grader_key)

    def _acquire_restore(self, count: Any) -> None:
        probe_pause.after_wakeup(self._grader_key)
        if not self._raw.acquire(False):
            with probe_pause.waiting(self._busy):
                self._wait("block")
        probe_locks._note_acquire(self._grader_key, "block")
        probe_locks.restore_held(self._grader_key, count if isinstance(count, int) else 1)

    def __repr__(self) -> str:
        return repr(self._raw)


class RecordedRLock(RecordedLock):
    """A ``threading.RLock`` made by the student's code (re-entry by its owner is counted as such)."""

    _grader_kind = "RLock"

    def locked(self) -> bool:  # not a witness that the lock is free (an RLock's owner may take it again)
        return bool(getattr(self._raw, "locked", lambda: self._raw._is_owned())())

    def _is_owned(self) -> bool:
        return bool(self._raw._is_owned())

    def _release_save(self) -> Any:
        state = self._raw._release_save()
        return (state, probe_locks.drop_held(self._grader_key))

    def _busy(self) -> bool:
        return repr(self._raw).startswith("<locked")

    def _acquire_restore(self, saved: Any) -> None:
        state, count = saved
        probe_pause.after_wakeup(self._grader_key)
        if not self._raw.acquire(False):  # taken: wait for it (an attempt, if the wait lasts)
            with probe_pause.waiting(self._busy):
                self._wait("block")
        level = state[0] if isinstance(state, tuple) and state and type(state[0]) is int else 1
        for _ in range(level - 1):  # the recursion level the wait saved: (count, owner), and the owner is this thread
            self._raw.acquire()
        probe_locks._note_acquire(self._grader_key, "block")
        probe_locks.restore_held(self._grader_key, count)


def _make_lock(cls: type[RecordedLock], raw_factory: Any, kind: str, depth: int) -> RecordedLock:
    lock = cls(raw_factory(), _new_key())
    probe_locks.note_new(lock._grader_key, kind, depth + 1)
    probe_pause.note_node(lock._grader_key, lock._busy)
    return lock


def _lock_factory(raw_factory: Any) -> Any:
    def Lock(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the name threading gives it
        if args or kwargs or not _made_by_student(1):
            return raw_factory(*args, **kwargs)
        return _make_lock(RecordedLock, raw_factory, "Lock", 1)

    return Lock


def _rlock_factory(raw_factory: Any) -> Any:
    def RLock(*args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the name threading gives it
        if args or kwargs or not _made_by_student(1):
            return raw_factory(*args, **kwargs)
        return _make_lock(RecordedRLock, raw_factory, "RLock", 1)

    return RLock


# -- Condition, Semaphore, Event, Barrier ------------------------------------------------
def _key_of(obj: Any) -> str | None:
    try:
        key = obj.__dict__.get("_grader_key")
    except AttributeError:
        return None
    return key if isinstance(key, str) else None


def _install_condition() -> None:
    cls: Any = threading.Condition
    init, wait = cls.__init__, cls.wait
    notify, notify_all = cls.notify, cls.notify_all

    def __init__(self: Any, lock: Any = None) -> None:
        if lock is None and _made_by_student(1):
            lock = _make_lock(RecordedRLock, _ORIGINAL["RLock"], "Condition", 1)
        init(self, lock)

    def wait_(self: Any, timeout: float | None = None) -> bool:
        key = _key_of(self._lock)
        if _outer() or (key is None and _from_threading(1)):
            return bool(wait(self, timeout))
        mark = probe_pause.cond_waiting(self, timeout) if probe_pause.active() else None
        try:
            return bool(_waiting("condition", key, timeout, key is not None, wait, self, timeout, still=mark))
        finally:
            if mark is not None:
                probe_pause.cond_done(self)

    def notify_(self: Any, n: int = 1) -> None:
        notify(self, n)
        if not getattr(_local, "quiet", False):
            probe_pause.cond_notified(self, n if type(n) is int else 1)
        key = _key_of(self._lock)
        if key is not None and not getattr(_local, "quiet", False):
            probe_locks.note_op("notify", key)

    def notify_all_(self: Any) -> None:
        _local.quiet = True  # notify_all calls notify
        try:
            notify_all(self)
        finally:
            _local.quiet = False
        probe_pause.cond_notified(self, None)
        key = _key_of(self._lock)
        if key is not None:
            probe_locks.note_op("notify_all", key)

    cls.__init__, cls.wait, cls.notify, cls.notify_all = __init__, wait_, notify_, notify_all_
    cls.notifyAll = notify_all_


def _semaphore_wait(sem: Any, key: str | None, timeout: float | None, acquire: Any) -> bool:
    """Block in the semaphore's own ``acquire`` (a first try did not get it), recorded as a wait."""
    mark = probe_pause.waiting(lambda: sem._value == 0, timeout) if probe_pause.active() else None
    if key is None:
        return bool(_waiting("semaphore", key, timeout, False, acquire, sem, True, timeout, still=mark))
    return bool(_waiting("semaphore", key, timeout, True, probe_wants.acquire_blocking, key,
                         lambda left: acquire(sem, True, left), timeout, _mode(True, timeout), still=mark))


def _binary_semaphore(sem: Any, value: Any) -> None:
    """A semaphore made with the value 1 excludes like a lock: a node the ``close_cycles`` probe pauses for."""
    if value == 1:
        probe_pause.note_node(sem._grader_key, lambda: sem._value == 0)


def _install_semaphores() -> None:
    cls: Any = threading.Semaphore
    init, acquire, release = cls.__init__, cls.acquire, cls.release

    def __init__(self: Any, value: int = 1) -> None:
        init(self, value)
        if _made_by_student(1, past_threading=True):
            self._grader_key = _new_key()
            kind = "BoundedSemaphore" if isinstance(self, threading.BoundedSemaphore) else "Semaphore"
            probe_locks.note_new(self._grader_key, kind, 1, value if type(value) is int else None)
            _binary_semaphore(self, value)

    def acquire_(self: Any, blocking: bool = True, timeout: float | None = None) -> bool:
        key = _key_of(self)
        if key is None and (not blocking or _from_threading(1)):
            return bool(acquire(self, blocking, timeout))
        if blocking:
            probe_pause.before_acquire(key)
        got = bool(acquire(self, blocking, timeout) if not blocking else acquire(self, False))
        if not got and blocking:
            got = _semaphore_wait(self, key, timeout, acquire)
        if got and key is not None:
            probe_locks._note_acquire(key, _mode(blocking, timeout))
        return got

    def release_(self: Any, n: int = 1) -> None:
        release(self, n)
        key = _key_of(self)
        if key is not None:
            probe_locks.note_op("release", key)
            for _ in range(n if type(n) is int else 1):
                probe_locks._note_release(key)

    def enter(self: Any) -> bool:
        return bool(self.acquire())

    cls.__init__, cls.acquire, cls.release, cls.__enter__ = __init__, acquire_, release_, enter
    bounded: Any = threading.BoundedSemaphore
    bounded_release = bounded.release

    def bounded_release_(self: Any, n: int = 1) -> None:
        bounded_release(self, n)
        key = _key_of(self)
        if key is not None:
            probe_locks.note_op("release", key)
            for _ in range(n if type(n) is int else 1):
                probe_locks._note_release(key)

    bounded.release = bounded_release_


def _install_event_barrier() -> None:
    event: Any = threading.Event
    e_init, e_wait, e_set, e_clear = event.__init__, event.wait, event.set, event.clear

    def e_init_(self: Any) -> None:
        e_init(self)
        if _made_by_student(1):
            self._grader_key = _new_key()
            probe_locks.note_new(self._grader_key, "Event", 1)

    def e_wait_(self: Any, timeout: float | None = None) -> bool:
        key = _key_of(self)
        if _outer() or (key is None and _from_threading(1)):
            return bool(e_wait(self, timeout))
        mark = probe_pause.waiting(lambda: not self.is_set(), timeout) if probe_pause.active() else None
        return bool(_waiting("event", key, timeout, key is not None, e_wait, self, timeout, still=mark))

    def op(original: Any, name: str) -> Any:
        def method(self: Any) -> None:
            original(self)
            key = _key_of(self)
            if key is not None:
                probe_locks.note_op(name, key)

        return method

    event.__init__, event.wait = e_init_, e_wait_
    event.set, event.clear = op(e_set, "set"), op(e_clear, "clear")

    barrier: Any = threading.Barrier
    b_init, b_wait = barrier.__init__, barrier.wait

    def b_init_(self: Any, parties: int, action: Any = None, timeout: float | None = None) -> None:
        b_init(self, parties, action, timeout)
        if _made_by_student(1):
            self._grader_key = _new_key()
            probe_locks.note_new(self._grader_key, "Barrier", 1, parties if type(parties) is int else None)

    def b_wait_(self: Any, timeout: float | None = None) -> int:
        key = _key_of(self)
        mark = probe_pause.waiting(lambda: self._state == 0, timeout) if probe_pause.active() else None
        return int(_waiting("barrier", key, timeout, key is not None, b_wait, self, timeout, still=mark))

    barrier.__init__, barrier.wait = b_init_, b_wait_


def install() -> None:
    """Record the ``threading`` primitives in this process (once)."""
    if _ORIGINAL:
        return
    _ORIGINAL["Lock"], _ORIGINAL["RLock"] = threading.Lock, threading.RLock
    threading.Lock = _lock_factory(_ORIGINAL["Lock"])  # type: ignore[misc,assignment]
    threading.RLock = _rlock_factory(_ORIGINAL["RLock"])  # type: ignore[assignment]
    _install_condition()
    _install_semaphores()
    _install_event_barrier()
    probe_locks.FLUSH_ALSO.extend((flush, probe_wants.flush))
