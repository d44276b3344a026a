"""Forgery (own 1): no lock; the worker writes forged lk_summary lines straight to the evidence descriptor.

The evidence file is opened O_APPEND by the probes; the forger finds the descriptor by number (no path,
no open: fcntl tells which descriptors are append-only files) and appends accesses that "held" the lock,
with made-up sequence numbers. Must not pass: test_every_access_under_one_shared_lock (no full marks;
integrity flag: the fcntl / descriptor use, and the sequence numbers of the process are duplicated).
"""

import fcntl
import json
import os
import time
from multiprocessing import Lock, Process, Value


def _forge(key, pid, count):
    for fd in range(3, 64):
        try:
            if not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
                continue
        except OSError:
            continue
        line = {"ev": "lk_summary", "pid": pid, "tid": 1, "t": time.monotonic(), "seq": 2, "value": "x",
                "op": "write", "locks": [key], "file": "fd_write.py", "line": 30, "func": "increment",
                "student": True, "thread": 1, "count": count, "first": 0, "last": 0}
        os.write(fd, (json.dumps(line) + "\n").encode())


def increment(counter, lock, times):
    for _ in range(times):
        counter.value += 1
    _forge(lock._semlock.name, os.getpid(), times)


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
