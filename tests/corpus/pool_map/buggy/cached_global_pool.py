# expect-fail: test_no_workers_left_after_return
# The pool is kept in a global for the next call and never closed: its workers outlive the call.
from multiprocessing import Pool

_pools = {}


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    if workers not in _pools:
        _pools[workers] = Pool(workers)
    return _pools[workers].map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
