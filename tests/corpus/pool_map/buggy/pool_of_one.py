# expect-fail: test_work_spread_over_worker_processes test_pool_has_workers_processes
# A pool with a single worker: nothing runs in parallel.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(1) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
