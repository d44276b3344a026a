"""Forgery (own 3): a pool of ONE worker, with time.monotonic patched so that tasks seem to overlap.

Every call to time.monotonic in the worker returns a clock that runs backwards every other call, hoping
the probes' task start/end times overlap as if two workers ran at once. Must not pass:
test_work_spread_over_worker_processes (no full marks; integrity flag: time.monotonic was replaced).
"""

import itertools
import time
from multiprocessing import Pool

_real = time.monotonic
_ticks = itertools.count()


def _bent():
    return _real() - (0.5 if next(_ticks) % 2 else 0.0)


def _init():
    time.monotonic = _bent


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(processes=1, initializer=_init) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
