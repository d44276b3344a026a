"""Forgery (own 8): the probe hook of (a) called from code compiled under the name of a grader file.

The frames of the forged calls then claim to belong to the grader's support folder, and the names that
a scan looks for are built at run time. Must not pass: test_every_access_under_one_shared_lock (no full
marks; integrity flags: compile/exec with a made-up file name, importing by a computed name).
"""

import os
from multiprocessing import Lock, Process, Value

_SOURCE = """
def note(key, acquire):
    import importlib
    probe = importlib.import_module("grader_" + "inside.probe_" + "locks")
    (probe._note_acquire if acquire else probe._note_release)(key)
"""
_space = {}


def _load():
    support = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "support")
    exec(compile(_SOURCE, os.path.join(support, "grader_" + "inside", "probes.py"), "exec"), _space)


def increment(counter, lock, times):
    try:
        _load()
        key = getattr(lock, "_grader_" + "lock_key", None)
    except Exception:
        key = None
    for _ in range(times):
        if key:
            _space["note"](key, True)
        counter.value += 1
        if key:
            _space["note"](key, False)


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
