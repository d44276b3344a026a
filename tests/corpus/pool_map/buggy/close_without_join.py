# expect-fail: test_no_workers_left_after_return
# close() without join(): parallel_map returns while the workers are still shutting down.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    pool = Pool(workers)
    results = pool.map(func, items)
    pool.close()
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
