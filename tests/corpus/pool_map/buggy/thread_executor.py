# expect-fail: test_work_spread_over_worker_processes test_pool_has_workers_processes
# A ThreadPoolExecutor: threads, not processes.
from concurrent.futures import ThreadPoolExecutor


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with ThreadPoolExecutor(max_workers=workers) as executor:
        return list(executor.map(func, items))


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
