# expect-fail: test_no_workers_left_after_return
# No with, no close(), no join(): the workers stop only if Python garbage-collects the pool.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    pool = Pool(workers)
    return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
