# expect-fail: test_sum_of_squares_hands_workers_on
# sum_of_squares's default is 2 workers, not 4.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(processes=workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=2):
    return sum(parallel_map(square, range(n), workers))
