"""Drivers for the fifo_queue checks: run producer() or consumer() alone, with real queues.

These run inside the sandbox, next to the student's module (standard library
only). Each starts the student's function as the target of a child process, as
run_pipeline would, so that whatever it does to its queues (close() included)
happens in its own process; the driver reads the queues from the outside and
returns plain data.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_errors
import time
from contextlib import nullcontext
from multiprocessing.reduction import ForkingPickler
from typing import Any

POLL = 0.05


def put_now(queue: Any, item: Any) -> None:
    """``queue.put(item)``, but the item is in the queue's pipe when this returns.

    ``Queue.put`` hands the item to a feeder thread that writes it a moment
    later, so a reader started right after the puts might find the queue empty
    or the last item missing. Writing directly (taking the queue's semaphore as
    put() does, which get() releases) makes what the child finds the same on
    every run. A ``JoinableQueue`` also counts the item as a task to be done.
    """
    queue._sem.acquire()
    data = ForkingPickler.dumps(item)
    with queue._wlock if queue._wlock is not None else nullcontext():
        queue._send_bytes(data)
    unfinished = getattr(queue, "_unfinished_tasks", None)
    if unfinished is not None:
        unfinished.release()


def drain(queue: Any, child: Any, limit: float) -> tuple[list[Any], bool]:
    """Take items off ``queue`` while ``child`` runs, then what it left; ``(items, child ended in time)``.

    Reading while the child runs keeps it from blocking on a full pipe; once it
    has ended, everything it put is in the pipe, so the rest is taken without
    waiting.
    """
    items: list[Any] = []
    deadline = time.monotonic() + limit
    while True:
        try:
            items.append(queue.get(timeout=POLL))
            continue
        except queue_errors.Empty:
            pass
        if not child.is_alive():
            child.join()
            while True:
                try:
                    items.append(queue.get(block=False))
                except queue_errors.Empty:
                    return items, True
        if time.monotonic() > deadline:
            return items, False


def _stop(child: Any) -> None:
    if child.is_alive():
        child.kill()
    child.join()


def alone(student: Any, items: list[Any], consumed: list[Any], after: Any, limit: float = 6.0) -> dict[str, Any]:
    """Run ``producer`` and ``consumer`` each alone, in two child processes at once, with queues of their own.

    ``producer(queue, items)`` gets an empty queue; the result says what it put
    there, in order. ``consumer(queue, results)`` gets a queue already holding
    ``consumed``, ``SENTINEL`` and ``after``; the result says what it put on
    ``results``, in order, and what was left on ``queue`` once it ended
    (``after``, if it stopped at the sentinel). It also says whether the module
    defines ``SENTINEL`` and its value.
    """
    # JoinableQueue is a Queue that also accepts task_done(), so a consumer written for one works too.
    produced = multiprocessing.JoinableQueue()
    queue, results = multiprocessing.JoinableQueue(), multiprocessing.JoinableQueue()
    for item in [*consumed, None, after]:
        put_now(queue, item)
    prod = multiprocessing.Process(target=student.producer, args=(produced, items), name="producer")
    cons = multiprocessing.Process(target=student.consumer, args=(queue, results), name="consumer")
    prod.start()
    cons.start()
    put, prod_ended = drain(produced, prod, limit)
    _stop(prod)
    forwarded, cons_ended = drain(results, cons, limit)
    _stop(cons)
    left: list[Any] = []
    if cons_ended:
        while True:
            try:
                left.append(queue.get(block=False))
            except queue_errors.Empty:
                break
    return {
        "sentinel": {"defined": hasattr(student, "SENTINEL"), "value": getattr(student, "SENTINEL", None)},
        "producer": {"put": put, "ended": prod_ended, "exitcode": prod.exitcode},
        "consumer": {"forwarded": forwarded, "ended": cons_ended, "exitcode": cons.exitcode, "left": left},
    }
