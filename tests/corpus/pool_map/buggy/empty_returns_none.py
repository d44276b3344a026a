# expect-fail: test_empty_list
# None instead of [] for an empty list.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    if not items:
        return None
    with Pool(workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    if n == 0:
        return 0
    return sum(parallel_map(square, range(n), workers))
