# expect-fail: test_work_spread_over_worker_processes test_pool_has_workers_processes
# Submits each item to a ProcessPoolExecutor and waits for its result before submitting the next: the items run
# one after another, and the executor never starts a second worker process.
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with ProcessPoolExecutor(workers) as executor:
        return [executor.submit(func, item).result() for item in items]


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
