# expect-fail: test_work_spread_over_worker_processes
# A new pool for every item: the items run one after another.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    results = []
    for item in items:
        with Pool(workers) as pool:
            results.append(pool.apply(func, (item,)))
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
