"""Forgery (a): no lock at all, but the lock probe's own "acquired" hook is called around each access.

A student who read grader_inside/probe_locks.py finds ``_note_acquire(key)`` and the lock's
``_grader_lock_key``: calling them makes every unlocked access look as if ``lock`` was held.
Must not pass: test_every_access_under_one_shared_lock, test_increment_holds_the_lock (no full marks,
an integrity flag naming sys.modules / the probe module).
"""

import sys
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    probe = sys.modules.get("grader_inside.probe_locks")
    key = getattr(lock, "_grader_lock_key", None)
    for _ in range(times):
        if probe is not None and key:
            probe._note_acquire(key)
        counter.value += 1
        if probe is not None and key:
            probe._note_release(key)


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
