# One apply_async per item, then get() on each result in the order of items.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    if not items:
        return []
    with Pool(processes=workers) as pool:
        pending = [pool.apply_async(func, (item,)) for item in items]
        return [result.get() for result in pending]


def sum_of_squares(n, workers=4):
    squares = parallel_map(square, [i for i in range(n)], workers)
    return sum(squares)
