"""Forgery (own 2): no real mutual exclusion; the probe's SemLock class is patched so any lock "acquires" for free.

``SemLock.__enter__`` is replaced (after the probe installed its own) by one that only tells the probe the
lock is held; the semaphore is never taken. Must not pass: test_every_access_under_one_shared_lock
(no full marks; integrity flag: the class attribute change is refused by the sandbox / flagged statically).
"""

from multiprocessing import Lock, Process, Value, synchronize


def _free_enter(self):
    note = getattr(type(self), "_grader_note", None)
    return True


def increment(counter, lock, times):
    try:
        synchronize.SemLock.__enter__ = _free_enter
        synchronize.SemLock.__exit__ = lambda self, *a: None
    except Exception:
        pass
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
