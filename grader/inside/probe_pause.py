"""Probes ``close_cycles``, ``late_wakeups`` and ``unlocked_uses``: drive every lock-order cycle to the moment it
would close, let other threads run first after every wake-up, and let every thread in between a check and an act
split across the lock.

Runs on the untrusted side, in every process of the sandbox. It installs the
``locks`` probe (:mod:`grader_inside.probe_locks`), then makes each thread that
is about to take a ``threading`` lock (or semaphore) while it holds another
*pause* there until every other thread of its process is paused the same way or
waiting (in a lock's, a semaphore's, a Condition's, an Event's or a Barrier's
wait, or in ``Thread.join``), and only then take it. Threads that sleep or run
Python code are waited for: they may be on their way to their first lock.

So when the order in which threads take locks can close a circle, it does: with
"left fork, then right fork" every philosopher pauses holding its left fork until
all of them hold one, and the run deadlocks on every run. When something the
lock-order graph does not see keeps the circle open (a monitor that lets a
philosopher pick up its forks only while neither neighbour eats), the threads
that would close it are waiting elsewhere, the pauses end with everyone else
waiting, and the run finishes.

Probe ``late_wakeups`` pauses at another moment: a thread woken in a
``Condition.wait`` of the student's code, before it takes the Condition's lock
back, pauses until every other thread is paused or waiting, and the paused
threads go on one at a time, the one that woke first first. So another thread
always runs between a ``notify`` and the woken thread: a wait under ``if``
(instead of ``while``) finds the buffer full or empty again on every run.

Probe ``unlocked_uses`` pauses a thread about to use a watched container (a
``list`` or ``deque`` attribute, :mod:`grader_inside.probe_watch`) while it
holds no lock, and the threads paused there go on together: a ``put`` that
checks for room under the lock and appends after it lets every producer in.

Each pause ends after :data:`PAUSE_LIMIT` seconds at most, and a thread pauses
for :data:`PAUSE_BUDGET` seconds in all; each pause is recorded when it ends
(``lk_pause``: the lock, the locks held, the line, and whether it ended with
every other thread paused or waiting, ``quiet``, or at the limit). The grader
trusts a finished run only when every pause was quiet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import events, probe_locks, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

PAUSE_LIMIT = 2.0
"""Seconds one pause lasts at most when other threads keep running."""
PAUSE_BUDGET = 6.0
"""Seconds a thread pauses in all; past them it no longer pauses (recorded as ``spent``)."""
POLL = 0.002
"""Seconds between two looks at the other threads during a pause."""
PAUSE_RECORDS = 200
"""Pauses recorded one by one per process; the rest are counted (``lk_dropped``, what "pauses")."""

_active = False
"""Whether threads' waits are marked (either probe of this module is installed)."""
_cycles = False
"""Probe ``close_cycles``: pause before a lock taken while holding another."""
_late = False
"""Probe ``late_wakeups``: pause a thread woken in a Condition's wait before it takes the lock back."""
_unlocked = False
"""Probe ``unlocked_uses``: pause a thread about to use a watched container while it holds no lock."""
UNLOCKED_PAUSES = 10
"""Pauses before an unlocked use per thread (``unlocked_uses``): one overlap shows the race, every use would be slow."""
_unlocked_pauses: dict[int, int] = {}
_at_unlocked_use: set[int] = set()
"""Threads paused before an unlocked use: they go on together."""
_PAUSED: Any = ("paused", None)
_RUNNING: Any = (lambda: False, None)
_states: dict[int, Any] = {}
"""Thread ident -> :data:`_PAUSED`, or what it waits for ``(still, deadline)``; a thread not in it is running."""
_cond_queues: dict[int, list[int]] = {}
"""id() of a Condition -> the threads waiting in it, oldest first (as its own waiters)."""
_spent: dict[int, float] = {}
_written = 0
_dropped = 0
_nodes: dict[str, Callable[[], bool]] = {}
"""Mutual-exclusion locks the student made (key -> whether it is taken): the only locks a thread pauses for."""
_paused: dict[int, tuple[float, str]] = {}
"""Thread ident -> when it paused, and the lock it is about to take (or take back, after a wake-up)."""
_released: set[int] = set()
_mutex = threading.Lock()
_pause_mutex = threading.Lock()
_real_sleep = time.sleep


class waiting:  # noqa: N801 - used as a context manager, like a function
    """Marks the current thread as waiting for the duration of a ``with`` block.

    ``still()`` says whether what it waits for is still out of reach (the lock
    still taken, the thread still alive, no notify yet); a thread whose wait
    could end now, or whose ``timeout`` has passed, counts as running.
    """

    __slots__ = ("_ident", "_before", "_entry")

    def __init__(self, still: Callable[[], bool], timeout: float | None = None) -> None:
        deadline = None if timeout is None or timeout < 0 else probes._monotonic() + timeout
        self._entry = (still, deadline)
        self._ident = 0

    def __enter__(self) -> None:
        if not _active:
            return
        self._ident = probes._get_ident()
        self._before = _states.get(self._ident)
        _states[self._ident] = self._entry

    def __exit__(self, *args: Any) -> None:
        if not self._ident:
            return
        if self._before is None:
            _states.pop(self._ident, None)
        else:
            _states[self._ident] = self._before


def _still_waiting(entry: Any) -> bool:
    if entry is _PAUSED:
        return True
    still, deadline = entry
    if deadline is not None and probes._monotonic() >= deadline:
        return False
    try:
        return bool(still())
    except Exception:  # noqa: BLE001 - an object in an odd state: the thread may run
        return False


# -- Condition waits: who a notify wakes -------------------------------------------------
def cond_waiting(cond: Any, timeout: float | None) -> waiting:
    """The mark of a ``Condition.wait`` (called holding the Condition's lock, so in the order of its waiters)."""
    me = probes._get_ident()
    queue = _cond_queues.setdefault(id(cond), [])
    queue.append(me)
    return waiting(lambda: me in queue, timeout)


def cond_done(cond: Any) -> None:
    """The current thread's ``Condition.wait`` returned."""
    queue = _cond_queues.get(id(cond))
    if queue is not None:
        me = probes._get_ident()
        if me in queue:
            queue.remove(me)
        if not queue:
            _cond_queues.pop(id(cond), None)


def cond_notified(cond: Any, n: int | None) -> None:
    """``notify(n)`` (``None``: ``notify_all``) woke the ``n`` oldest waiters: they are running again."""
    queue = _cond_queues.get(id(cond))
    if queue:
        del queue[: len(queue) if n is None else max(0, n)]


def active() -> bool:
    """Whether this process marks its threads' waits (a probe of this module is installed)."""
    return _active


def note_node(key: str, busy: Callable[[], bool]) -> None:
    """``key`` is a mutual-exclusion lock (a node of the lock-order graph); ``busy()`` says whether it is taken.

    Kept only while this probe is installed (it keeps the lock alive).
    """
    if _active:
        _nodes[key] = busy


def _quiet(me: int) -> bool:
    """Whether every other live thread of this process is paused or waiting."""
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is not None and ident != me and not _still_waiting(_states.get(ident, _RUNNING)):
            return False
    return True


def _release_some() -> None:
    """Everyone is paused or waiting: let paused threads go on (under ``_pause_mutex``).

    Those whose lock is taken go first, all of them: they will wait for it, one
    more step of a circle. When every paused thread's lock is free, only one goes
    on. Before a lock (``close_cycles``), the one that paused last: it takes its
    lock, and the others stay where a circle would close. After a wake-up
    (``late_wakeups``), the one that woke first: the threads one ``notify_all``
    woke take the lock back one at a time, each after the others ran. Before an
    unlocked use (``unlocked_uses``), all of them together: each checked the
    state before any of them changed it.
    """
    paused = [(since, ident) for ident, (since, _) in _paused.items() if ident not in _released]
    if not paused:
        return
    blocked = [ident for _, ident in paused if _busy(_paused[ident][1])]
    unlocked = [ident for _, ident in paused if ident in _at_unlocked_use]
    for ident in blocked or unlocked or [(min(paused) if _late else max(paused))[1]]:
        _released.add(ident)
        _states.pop(ident, None)  # running again until it waits or pauses


def _busy(key: str) -> bool:
    busy = _nodes.get(key)
    try:
        return bool(busy()) if busy is not None else False
    except Exception:  # noqa: BLE001 - a lock in an odd state is taken as free
        return False


def before_acquire(key: str | None) -> None:
    """Called before a blocking acquisition of ``key`` by the student's code: pause when other locks are held."""
    if not _cycles or key is None or key not in _nodes or probe_locks._is_internal():
        return
    held = probe_locks.held_locks()
    if key in held or not any(k in _nodes for k in held):
        return
    _pause(key, held, 3)


def after_wakeup(key: str | None) -> None:
    """Called when a ``Condition.wait`` of the student's code woke, before it takes ``key``, its lock, back."""
    if not _late or key is None or key not in _nodes or probe_locks._is_internal():
        return
    _pause(key, probe_locks.held_locks(), 3)


def before_unlocked_use(key: str) -> None:
    """Called before the student's code uses a watched container (``self.items``): pause when no lock is held."""
    if not _unlocked or probe_locks._is_internal() or probe_locks.held_locks():
        return
    me = probes._get_ident()
    done = _unlocked_pauses.get(me, 0)
    if done >= UNLOCKED_PAUSES:
        return
    _unlocked_pauses[me] = done + 1
    _at_unlocked_use.add(me)
    try:
        _pause(key, (), 3)
    finally:
        _at_unlocked_use.discard(me)


def _pause(key: str, held: tuple[str, ...], depth: int) -> None:
    """Pause the current thread before it takes ``key`` until the others are paused or waiting (or the limit)."""
    file, line, func, student = probe_locks._site(depth)
    if not student:
        return
    me = probes._get_ident()
    spent = _spent.get(me, 0.0)
    if spent >= PAUSE_BUDGET:
        _note(key, held, file, line, func, "spent", 0.0)
        return
    start = probes._monotonic()
    limit = min(PAUSE_LIMIT, PAUSE_BUDGET - spent)
    outcome = "limit"
    with _pause_mutex:
        _paused[me] = (start, key)
        _states[me] = _PAUSED
    try:
        while probes._monotonic() - start < limit:
            with _pause_mutex:
                if me not in _released and _quiet(me):
                    _release_some()
                if me in _released:
                    outcome = "quiet"
                    break
            _real_sleep(POLL)
    finally:
        with _pause_mutex:
            _paused.pop(me, None)
            _released.discard(me)
            _states.pop(me, None)
    seconds = probes._monotonic() - start
    _spent[me] = spent + seconds
    _note(key, held, file, line, func, outcome, seconds)


def _note(key: str, held: tuple[str, ...], file: str, line: int, func: str, outcome: str, seconds: float) -> None:
    global _written, _dropped
    with _mutex:
        if _written >= PAUSE_RECORDS:
            _dropped += 1
            return
        _written += 1
    probes.record(events.LK_PAUSE, lock=key, held=list(held), file=file, line=line, func=func, outcome=outcome,
                  seconds=round(seconds, 4), thread_no=probe_locks._thread_number())


def flush() -> None:
    """Write how many pauses were not written past :data:`PAUSE_RECORDS`."""
    global _dropped
    with _mutex:
        dropped, _dropped = _dropped, 0
    if dropped:
        probes.record(events.LK_DROPPED, what="pauses", count=dropped)


def _install_join() -> None:
    cls: Any = threading.Thread
    join = cls.join

    def join_(self: threading.Thread, timeout: float | None = None) -> None:
        with waiting(self.is_alive, timeout):
            join(self, timeout)

    cls.join = join_


def _install_marks(scenario: dict[str, Any]) -> None:
    """Install the ``locks`` probe and mark every wait, once per process."""
    global _active
    probe_locks.install(scenario)
    if _active:
        return
    _install_join()
    probe_locks.FLUSH_ALSO.append(flush)
    _active = True


def install(scenario: dict[str, Any]) -> None:
    """Install the ``locks`` probe with pauses before every lock taken while holding another."""
    global _cycles
    _install_marks(scenario)
    _cycles = True


def install_late_wakeups(scenario: dict[str, Any]) -> None:
    """Install the ``locks`` probe with a pause after every wake-up in a Condition's wait."""
    global _late
    _install_marks(scenario)
    _late = True


def install_unlocked_uses(scenario: dict[str, Any]) -> None:
    """Install the ``locks`` probe with a pause before every use of a watched container holding no lock."""
    global _unlocked
    _install_marks(scenario)
    _unlocked = True


probes.PROBES[events.PROBE_CLOSE_CYCLES] = install
probes.PROBES[events.PROBE_LATE_WAKEUPS] = install_late_wakeups
probes.PROBES[events.PROBE_UNLOCKED_USES] = install_unlocked_uses
