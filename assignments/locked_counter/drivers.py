"""Drivers of the locked_counter checks: they run inside the sandbox, next to the student's module."""

import multiprocessing
import threading


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
