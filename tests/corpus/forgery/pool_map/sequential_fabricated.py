"""Forgery (c): parallel_map runs every item sequentially in the caller and fabricates the pool's evidence.

Through sys.modules it reaches the probes, silences their recorder while it runs the tasks itself, and
writes pool_new (with invented worker pids), pool_task start/end in those pids (overlapping in time),
pool_close/terminate/join. Must not pass: test_work_spread_over_worker_processes,
test_pool_has_workers_processes (no full marks; integrity flag naming sys.modules / the probes).
"""

import json
import os
import sys
import time


def square(x):
    return x * x


def _fake(probes, kind, pid, **fields):
    recorder = probes.RECORDER
    event = {"ev": kind, "pid": pid, "tid": 1, "t": time.monotonic(), "seq": 0}
    event.update(fields)
    os.write(recorder.fd, (json.dumps(event) + "\n").encode())


def parallel_map(func, items, workers=4):
    probes = sys.modules.get("grader_inside.probes")
    if probes is None or probes.RECORDER is None:
        return [func(x) for x in items]
    me = os.getpid()
    fake = [me + 1000 + i for i in range(max(2, workers))]
    pool = f"{me}:1"
    _fake(probes, "pool_new", me, pool=pool, worker_kind="processes", cls="multiprocessing.pool.Pool",
          processes=workers, workers=fake)
    saved, probes.RECORDER = probes.RECORDER, None
    try:
        results = [func(x) for x in items]
    finally:
        probes.RECORDER = saved
    for i, x in enumerate(items):
        _fake(probes, "pool_task", fake[i % len(fake)], phase="start", item=x, thread="MainThread", waits={})
    for i, x in enumerate(items):
        _fake(probes, "pool_task", fake[i % len(fake)], phase="end", item=x, thread="MainThread", waits={})
    for kind in ("pool_close", "pool_terminate", "pool_join"):
        _fake(probes, kind, me, pool=pool)
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
