# expect-fail: test_pool_has_workers_processes test_work_spread_over_worker_processes
# One worker more than asked for.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers + 1) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
