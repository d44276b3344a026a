# expect-fail: test_square test_sum_of_squares
# square doubles instead of squaring.
from multiprocessing import Pool


def square(x):
    return x + x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
