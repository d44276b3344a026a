# expect-fail: test_sum_of_squares_hands_workers_on
# sum_of_squares never passes its workers on: parallel_map always uses its own default.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(processes=workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n)))
