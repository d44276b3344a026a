"""Drivers of the locked_counter checks: they run inside the sandbox, next to the student's module."""

import multiprocessing
import threading

from grader_inside import probe_pools


def _free_for_another_thread(lock):
    """Whether another thread can take ``lock`` now (a held RLock is free again for its owner thread)."""
    got = []

    def attempt():
        taken = lock.acquire(False)
        if taken:
            lock.release()
        got.append(taken)

    helper = threading.Thread(target=attempt)
    helper.start()
    helper.join()  # acquire(False) never blocks
    return bool(got and got[0])


def increment_alone(student, times):
    """Call increment(counter, lock, times) once in this process and report what it left behind."""
    counter = multiprocessing.Value("i", 0)
    lock = multiprocessing.Lock()
    student.increment(counter, lock, times)
    return {
        "value": counter.get_obj().value,
        "lock_free": _free_for_another_thread(lock),
        "own_lock_free": _free_for_another_thread(counter.get_lock()),
        "lock": lock._semlock.name,
        "own_lock": counter.get_lock()._semlock.name,
    }


def increments_alone(student, sizes):
    """increment_alone for each of ``sizes`` in turn, each on a new counter and a new lock: one run, several calls.

    A mark (``call 0``, ``call 1``, ..., then ``end``) before each call and after the last splits the
    evidence of the run by call. It stops after a call that returned holding a lock: the check fails on
    that call, as it would have with a run per call, rather than wait for a later call that may block on
    the same mistake.
    """
    results = []
    for times in sizes:
        probe_pools.mark(f"call {len(results)}")
        result = increment_alone(student, times)
        results.append(result)
        if not (result["lock_free"] and result["own_lock_free"]):
            break
    probe_pools.mark("end")
    return results
