# expect-fail: test_work_spread_over_worker_processes test_pool_has_workers_processes
# ThreadPool has the Pool API but runs the tasks in threads of the caller's process.
from multiprocessing.pool import ThreadPool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with ThreadPool(workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
