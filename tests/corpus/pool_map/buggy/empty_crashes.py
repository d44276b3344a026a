# expect-fail: test_empty_list test_sum_of_squares
# Pool(min(workers, len(items))) is Pool(0) for an empty list: ValueError.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    items = list(items)
    with Pool(min(workers, len(items))) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
