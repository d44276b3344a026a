# expect-fail: test_pool_has_workers_processes
# parallel_map's default is 2 workers, not 4.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=2):
    with Pool(processes=workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
