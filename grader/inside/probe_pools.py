"""Pool probe and instrumented pool tasks, for ``multiprocessing.Pool`` assignments.

Runs on the *untrusted* side: copied into the sandbox as ``grader_inside.probe_pools``
and imported in every process of a run that asks for the ``pools`` probe. It
imports nothing of the trusted ``grader`` package.

Probe ``pools`` records the life of every ``multiprocessing.pool.Pool`` (and
``ThreadPool``, a subclass) created in any process of the sandbox:

- ``pool_new``: the pool's id, ``worker_kind`` (``processes`` or ``threads``), its
  number of workers and their pids;
- ``pool_close``, ``pool_terminate``, ``pool_join``: the methods called on it
  (``with Pool(...)`` calls ``terminate()`` on exit), recorded when ``close()`` is
  called and when ``terminate()`` and ``join()`` return (its workers are gone);
- ``pool_unclosed``: the pool was garbage-collected while still running (what
  Python warns about as "unclosed running multiprocessing pool").

Instrumented task: :func:`task` is a module-level function a driver passes to
the student's pool (``student.parallel_map(probe_pools.task, items)``); spawn
workers import it from this module. It returns ``3 * x + 1`` and records a
``pool_task`` event when it starts and ends, in whichever process runs it. A
driver first calls :func:`arrange` to make the tasks behave in a way that turns
pool bugs into evidence on every run, however loaded the machine:

- ``meet=2``: every task waits until tasks have started in at least two
  distinct processes (a rendezvous through marker files in the sandbox's
  private temporary folder), so a pool of two or more processes always shows
  overlapping tasks in two workers, and a one-process or sequential run never
  does;
- ``hold_first=True``: the task for ``items[0]`` waits until every other task
  has finished, so results collected in completion order always differ from the
  input order. A caller that polls (``AsyncResult.ready()``, ``Future.done()``)
  has kept what was ready at a poll by then only if it polled: so where the
  caller has polled at all, the held task waits for its next poll that finds
  every other result it polled before ready in the caller (a result reaches
  the caller a little after its task ended: a poll in between finds none), at
  most :data:`POLL_WAIT` seconds, and otherwise a little (:data:`HOLD_MARGIN`);
- ``handed_out=True``: where the caller hands the items to a process executor that starts its
  workers only as it finds none idle (``ProcessPoolExecutor`` under ``spawn`` or ``forkserver``),
  every task waits until the caller has submitted as many tasks as there are items, or asked for a
  result (``Future.result``, ``Future.done``). Such an executor starts one more worker for each task
  it is handed while none is idle, and a task that ended in between leaves one idle: how many
  workers it starts would depend on how fast the caller hands out the items and how loaded the
  machine is. With the wait, none is idle until every item was handed out, so it starts as many
  as it may (its ``max_workers``, where there are as many items), on every run. A pool that starts
  its workers at once (``multiprocessing.Pool``) is not waited for;
- ``fail=[item, ...]``: the task raises ``ValueError`` for these items.

Every wait is capped (``cap`` seconds); the first wait that reaches the cap
writes a marker so that no later task waits again: a solution that cannot
meet the condition costs ``cap`` seconds once, not once per task. A caller
blocked on the result of the only task its pools have left, with no thread of
its own beside, leaves a marker while it waits (:func:`_watch_waits`): no other
task can start before that one ends, so the task stops waiting at once (``pool.apply``
per item no longer costs the cap). A task that
runs in the process that called :func:`arrange`, as its only thread, while
that process has no child, does not wait at all: no other task can start or
end until it returns (a plain loop in the caller, no pool), so its condition
cannot change.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence

from . import events, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

PLAN_FILE = "plan.json"
GAVE_UP = "gave-up"
POLL = 0.005
HOLD_MARGIN = 0.1
"""Seconds the held task waits once the others are done, so that their results reach the caller before its own.

The order a solution collects results in does not depend on it: each other task's result is sent
before its worker takes the next task, so with two workers or more at most one other result can
still be on its way when the held task ends, and the held item is never first. It only makes the
order of arrival match the order the tasks recorded their ends in, which the message names."""
POLL_WAIT = 2.0
"""Seconds the held task waits at most for a polling caller's next poll once the other tasks are done."""
POLLED = "polled"
"""Marker: the caller asked whether a result is ready (at least once)."""
HELD = "held"
"""Marker: the other tasks are done and the held task waits for the caller's next poll."""
POLLED_SINCE = "polled-since-held"
"""Marker: the caller asked whether a result is ready after :data:`HELD` appeared, and the other results it had
polled had reached it (all but one of them were ready)."""
EXECUTOR = "on-demand-executor"
"""Marker: the caller handed a task to a process executor that starts its workers as it finds none idle."""
HANDED_OUT = "handed-out"
"""Marker: the caller has submitted as many tasks to its process executors as there are items (``handed_out``)."""
ASKED = "asked"
"""Marker: the caller asked a process executor's future for its result (``handed_out``)."""
CALLER_WAITS = "caller-waits"
"""Marker: the caller is blocked on the result of the one task its pools have left, so no other task can start
before that one ends (:func:`_watch_waits`)."""
_pool_ids = itertools.count(1)
_done_ids = itertools.count(1)
_pools: weakref.WeakSet[Any] = weakref.WeakSet()
"""The Pools this process created (the pools probe's)."""
_executors: weakref.WeakSet[Any] = weakref.WeakSet()
"""The process executors (``ProcessPoolExecutor``) this process created since its first :func:`arrange`."""
_caller = [0]
"""The pid of the process that called :func:`arrange` last."""


# -- the pools probe -----------------------------------------------------------
def _pool_id(pool: Any) -> str | None:
    value = getattr(pool, "_grader_pool", None)
    return value if isinstance(value, str) else None


def install_pools(scenario: dict[str, Any]) -> None:
    """Record creation, close, terminate, join and unclosed collection of every Pool."""
    from multiprocessing import pool as mpool

    cls = mpool.Pool
    if getattr(cls.__init__, "_grader_probe", False):
        return
    original_init = cls.__init__
    original_close = cls.close
    original_terminate = cls.terminate
    original_join = cls.join
    original_del = getattr(cls, "__del__", None)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self._grader_pool = f"{probes._getpid()}:{next(_pool_ids)}"
        original_init(self, *args, **kwargs)
        _pools.add(self)
        workers = [getattr(p, "pid", None) for p in getattr(self, "_pool", [])]
        probes.record(
            events.POOL_NEW,
            pool=self._grader_pool,
            worker_kind="threads" if isinstance(self, mpool.ThreadPool) else "processes",
            cls=probes._target_name(type(self)),
            processes=getattr(self, "_processes", None),
            workers=[w for w in workers if type(w) is int],
        )

    def close(self: Any) -> None:
        probes.record(events.POOL_CLOSE, pool=_pool_id(self))
        original_close(self)

    def terminate(self: Any) -> None:
        original_terminate(self)
        probes.record(events.POOL_TERMINATE, pool=_pool_id(self))

    def join(self: Any) -> None:
        original_join(self)
        probes.record(events.POOL_JOIN, pool=_pool_id(self))

    def __del__(self: Any) -> None:
        try:
            if getattr(self, "_state", None) == mpool.RUN and _pool_id(self) is not None:
                probes.record(events.POOL_UNCLOSED, pool=_pool_id(self))
        except Exception:  # interpreter shutdown: nothing left to record with
            pass
        if original_del is not None:
            original_del(self)

    __init__._grader_probe = True  # type: ignore[attr-defined]
    cls.__init__ = __init__  # type: ignore[method-assign]
    cls.close = close  # type: ignore[method-assign]
    cls.terminate = terminate  # type: ignore[method-assign]
    cls.join = join  # type: ignore[method-assign]
    cls.__del__ = __del__  # type: ignore[method-assign]


probes.PROBES[events.PROBE_POOLS] = install_pools


# -- instrumented tasks --------------------------------------------------------
def plan_dir() -> str:
    """The folder of the plan and the rendezvous markers (in the sandbox's private temp folder)."""
    return os.path.join(tempfile.gettempdir(), "grader-pool-tasks")


def arrange(
    items: Sequence[Any],
    *,
    meet: int = 0,
    hold_first: bool = False,
    fail: Sequence[Any] = (),
    cap: float = 10.0,
    handed_out: bool = False,
) -> None:
    """Write the plan the next calls of :func:`task` follow (and clear the markers of the last one)."""
    folder = plan_dir()
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.unlink(os.path.join(folder, name))
    plan = {
        "total": len(items),
        "meet": int(meet),
        "hold": [items[0]] if hold_first and len(items) else [],
        "fail": list(fail),
        "cap": float(cap),
        "caller": os.getpid(),
        "handed_out": bool(handed_out),
    }
    tmp = os.path.join(folder, PLAN_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(plan, handle)
    os.replace(tmp, os.path.join(folder, PLAN_FILE))
    _caller[0] = os.getpid()
    _submitted[0], _items[0] = 0, len(items)
    _touched.clear()
    _watch_waits()
    _count_submits()
    if plan["hold"] or handed_out:
        _watch_polls()


def _watch_waits() -> None:
    """Make the caller leave :data:`CALLER_WAITS` while it is blocked on the only task that can run.

    A caller that waits for each result before it hands out the next item (``pool.apply`` in a loop,
    ``apply_async(...).get()``, a ``map`` of one item, ``executor.submit(...).result()``) keeps every other task
    from starting: a task waiting for another to start in a second process, or for the others to end, would wait
    out its cap. With the marker, such a task stops waiting at once. ``multiprocessing.pool.ApplyResult.wait``
    (``get`` calls it; ``MapResult`` inherits both) and ``concurrent.futures.Future.result``; the
    process executors made from now on are counted (:func:`_waits_alone`). For ``handed_out``
    (:func:`arrange`), a future asked for its result leaves :data:`ASKED`.
    """
    from concurrent.futures import Future, process
    from multiprocessing import pool as mpool

    for cls, name in ((mpool.ApplyResult, "wait"), (Future, "result")):
        original = getattr(cls, name)
        if getattr(original, "_grader_waits", False):
            continue

        def waiting(self: Any, timeout: Any = None, *, _original: Any = original) -> Any:
            if hasattr(self, "set_running_or_notify_cancel") and _caller[0] == probes._getpid():
                _touch_once(ASKED)
            if timeout is not None or not _waits_alone(self):
                return _original(self, timeout)
            _touch(CALLER_WAITS)
            try:
                return _original(self, timeout)
            finally:
                try:
                    os.unlink(os.path.join(plan_dir(), CALLER_WAITS))
                except OSError:
                    pass

        waiting._grader_waits = True  # type: ignore[attr-defined]
        setattr(cls, name, waiting)
    init = process.ProcessPoolExecutor.__init__
    if not getattr(init, "_grader_waits", False):

        def __init__(self: Any, *args: Any, _original: Any = init, **kwargs: Any) -> None:
            _original(self, *args, **kwargs)
            _executors.add(self)

        __init__._grader_waits = True  # type: ignore[attr-defined]
        process.ProcessPoolExecutor.__init__ = __init__  # type: ignore[method-assign]


def _count_submits() -> None:
    """Make ``ProcessPoolExecutor.submit`` count the caller's tasks (for :func:`arrange`'s ``handed_out``).

    :data:`EXECUTOR` before the first task handed to an executor that starts its workers as it needs
    them, :data:`HANDED_OUT` once the caller has submitted as many tasks as there are items.
    """
    from concurrent.futures import process

    submit = process.ProcessPoolExecutor.submit
    if not getattr(submit, "_grader_waits", False):

        def counted(self: Any, *args: Any, _original: Any = submit, **kwargs: Any) -> Any:
            mine = _caller[0] == probes._getpid()
            if mine and _on_demand(self):
                _touch_once(EXECUTOR)  # before the task exists: every task of it finds the marker
            future = _original(self, *args, **kwargs)  # starts a worker here where none is idle
            if mine:
                _submitted[0] += 1
                if _submitted[0] == _items[0]:
                    _touch_once(HANDED_OUT)
            return future

        counted._grader_waits = True  # type: ignore[attr-defined]
        process.ProcessPoolExecutor.submit = counted  # type: ignore[method-assign, assignment]


def _on_demand(executor: Any) -> bool:
    """Whether a process executor starts its workers one by one, as it finds none idle (not all at its first task).

    Where its start method is not ``fork`` (``_safe_to_dynamically_spawn_children``); a Python whose executor
    lacks that attribute (an older patch release) starts them so whenever it has ``_idle_worker_semaphore``.
    """
    return bool(getattr(executor, "_safe_to_dynamically_spawn_children", hasattr(executor, "_idle_worker_semaphore")))


_submitted = [0]
"""Tasks the caller submitted to its process executors since the last :func:`arrange`."""
_items = [0]
"""How many items the last :func:`arrange` planned for."""


_touched: set[str] = set()
"""The markers :func:`_touch_once` wrote since the last :func:`arrange` (which clears the markers)."""


def _touch_once(name: str) -> None:
    if name not in _touched:
        _touched.add(name)
        _touch(name)


def _waits_alone(result: Any) -> bool:
    """Whether no task but ``result``'s can start while this thread waits for it (then :data:`CALLER_WAITS`).

    In the process that called :func:`arrange`, this thread is the only one besides the pools' and executors' own
    (no other thread can hand out a task meanwhile), and the only work left in all of its pools and process
    executors is ``result``'s, one task (an ``apply``, a ``map`` down to its last chunk, a ``submit``). Anything
    else, or anything unexpected: no.
    """
    try:
        if _caller[0] != probes._getpid() or getattr(result, "_number_left", 1) > 1:
            return False
        pools, executors = list(_pools), list(_executors)
        if hasattr(result, "_job"):
            mine = [p for p in pools if p._cache.get(result._job) is result]
        else:
            mine = [e for e in executors if any(w.future is result for w in list(e._pending_work_items.values()))]
        work = sum(len(p._cache) for p in pools) + sum(len(e._pending_work_items) for e in executors)
        if len(mine) != 1 or work != 1:
            return False
        own = {id(t) for p in pools for t in (p._worker_handler, p._task_handler, p._result_handler)}
        own |= {id(e._executor_manager_thread) for e in executors} | {id(e._call_queue._thread) for e in executors}
        me = threading.current_thread()
        return all(t is me or id(t) in own for t in threading.enumerate())
    except Exception:  # noqa: BLE001 - a pool or executor the student's code changed: wait as usual
        return False


_polled = [False]
"""Whether this process wrote :data:`POLLED` since the last :func:`arrange`."""
_asked: weakref.WeakSet[Any] = weakref.WeakSet()
"""The results this process polled since the last :func:`arrange`."""
_UNPATCHED: dict[str, Callable[[Any], bool]] = {}
"""``ready`` and ``done`` as they were before :func:`_watch_polls`: what a result says, without a marker."""


def _watch_polls() -> None:
    """Make this process's non-blocking "is it done?" questions leave markers (see :func:`arrange`'s ``hold_first``).

    ``multiprocessing.pool.AsyncResult.ready`` (``successful()`` asks it too) and
    ``concurrent.futures.Future.done``: the ways to look at a result without waiting for it.
    """
    _polled[0] = False
    _asked.clear()
    from concurrent.futures import Future
    from multiprocessing import pool as mpool

    for cls, name in ((mpool.ApplyResult, "ready"), (Future, "done")):
        original = getattr(cls, name)
        if getattr(original, "_grader_probe", False):
            continue
        _UNPATCHED[name] = original

        def asked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            _note_poll(self)
            return _original(self, *args, **kwargs)

        asked._grader_probe = True  # type: ignore[attr-defined]
        setattr(cls, name, asked)


def _note_poll(result: Any) -> None:
    try:
        _asked.add(result)
    except TypeError:  # no weak reference to it: it is not counted among the results to wait for
        pass
    if not _polled[0]:
        _polled[0] = True
        _touch(POLLED)
    elif (
        os.path.exists(os.path.join(plan_dir(), HELD))
        and not os.path.exists(os.path.join(plan_dir(), POLLED_SINCE))
        and _all_but_one_arrived()
    ):
        _touch(POLLED_SINCE)


def _all_but_one_arrived() -> bool:
    """Whether at most one of the results this process polled is still not ready in it (the held one).

    The other tasks ended before :data:`HELD` appeared, but their results reach the caller a little later (the
    pool's result thread, which a busy machine may keep waiting): a poll in between finds none of them ready,
    and a caller that keeps what is ready at each poll would then keep them all at its next poll, in order.
    """
    pending = 0
    try:
        asked = list(_asked)
    except RuntimeError:  # another thread of the caller polled at the same moment: the next poll looks again
        return False
    for result in asked:
        unpatched = _UNPATCHED.get("done" if hasattr(result, "set_running_or_notify_cancel") else "ready")
        try:
            ready = bool(unpatched(result)) if unpatched is not None else True
        except Exception:  # a result the student's code broke: it is not one to wait for
            ready = True
        pending += not ready
        if pending > 1:
            return False
    return True


def mark(label: str) -> None:
    """Record a ``pool_mark`` event, so a check can split the evidence of several calls in one run."""
    probes.record(events.POOL_MARK, label=label)


def _plan() -> dict[str, Any]:
    try:
        with open(os.path.join(plan_dir(), PLAN_FILE), encoding="utf-8") as handle:
            plan = json.load(handle)
    except (OSError, ValueError):
        return {}
    return plan if isinstance(plan, dict) else {}


def _touch(name: str) -> None:
    try:
        with open(os.path.join(plan_dir(), name), "w"):
            pass
    except OSError:
        pass


def _markers() -> list[str]:
    try:
        return os.listdir(plan_dir())
    except OSError:
        return []


def _nothing_else_runs(plan: dict[str, Any]) -> bool:
    """Whether no other task can start or end while this one waits (see the module's docstring).

    The kernel says so: ``/proc/self/task`` lists this process's threads, and each thread's
    ``children`` file its child processes. Where it cannot tell, the answer is no.
    """
    if plan.get("caller") != probes._getpid():
        return False
    try:
        threads = os.listdir("/proc/self/task")
        if len(threads) != 1:
            return False
        with open(f"/proc/self/task/{threads[0]}/children", encoding="ascii") as handle:
            return not handle.read().split()
    except OSError:
        return False


def _wait(condition: Callable[[list[str]], bool], cap: float, alone: bool = False, *, for_all: bool = True) -> dict[str, Any]:
    """Wait until ``condition(markers)`` holds; give up (for every task, unless not ``for_all``) after ``cap`` seconds.

    ``alone``: nothing else can make it hold (:func:`_nothing_else_runs`); then it does not wait. Nor does a wait
    for every task go on once the caller waits for this task alone (:data:`CALLER_WAITS`).
    """
    t0 = probes._monotonic()
    while True:
        names = _markers()
        if condition(names):
            return {"outcome": "met", "seconds": round(probes._monotonic() - t0, 3)}
        if alone:
            return {"outcome": "alone", "seconds": 0.0}
        if for_all and CALLER_WAITS in names:
            return {"outcome": "caller_waits", "seconds": round(probes._monotonic() - t0, 3)}
        if GAVE_UP in names:
            return {"outcome": "skipped", "seconds": round(probes._monotonic() - t0, 3)}
        if probes._monotonic() - t0 >= cap:
            if for_all:
                _touch(GAVE_UP)
            return {"outcome": "gave_up", "seconds": round(probes._monotonic() - t0, 3)}
        time.sleep(POLL)


def _started_pids(names: list[str]) -> set[str]:
    return {name.split(".", 1)[1] for name in names if name.startswith("started.")}


def task(x: Any) -> Any:
    """The grader's pool task: returns ``3 * x + 1``, recording where and when it ran (see :func:`arrange`)."""
    plan = _plan()
    thread = threading.current_thread().name
    probes.record(events.POOL_TASK, phase="start", item=probes.short(x), thread=thread)
    _touch(f"started.{probes._getpid()}")
    cap = float(plan.get("cap", 10.0))
    waits: dict[str, Any] = {}
    meet = int(plan.get("meet", 0))
    held = x in plan.get("hold", [])
    handed = bool(plan.get("handed_out")) and EXECUTOR in _markers()
    alone = (meet > 1 or held or handed) and _nothing_else_runs(plan)
    if handed:
        waits["handed_out"] = _wait(lambda names: HANDED_OUT in names or ASKED in names or POLLED in names, cap, alone)
    if meet > 1:
        waits["meet"] = _wait(lambda names: len(_started_pids(names)) >= meet, cap, alone)
        waits["meet"]["pids"] = len(_started_pids(_markers()))
    if held:
        others = int(plan.get("total", 1)) - 1
        waits["hold"] = _wait(lambda names: sum(n.startswith("done.") for n in names) >= others, cap, alone)
        if waits["hold"]["outcome"] == "met":
            if POLLED in _markers():
                _touch(HELD)
                waits["poll"] = _wait(lambda names: POLLED_SINCE in names, POLL_WAIT, for_all=False)
            else:
                time.sleep(HOLD_MARGIN)
    if x in plan.get("fail", []):
        probes.record(events.POOL_TASK, phase="end", item=probes.short(x), thread=thread, error="ValueError", waits=waits)
        _touch(f"done.{probes._getpid()}.{next(_done_ids)}")
        raise ValueError(f"task refused item {x!r} (raised on purpose by the grader)")
    result = 3 * x + 1
    probes.record(events.POOL_TASK, phase="end", item=probes.short(x), thread=thread, waits=waits)
    _touch(f"done.{probes._getpid()}.{next(_done_ids)}")
    return result
