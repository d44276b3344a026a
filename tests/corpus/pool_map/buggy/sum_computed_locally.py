# expect-fail: test_sum_of_squares
# sum_of_squares does not use parallel_map.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(square(x) for x in range(n))
