# starmap over one-element tuples, a helper that makes the pool, a size capped by the items.
from multiprocessing import Pool


def square(x):
    return x * x


def _make_pool(workers, count):
    return Pool(processes=max(1, min(workers, count)))


def parallel_map(func, items, workers=4):
    items = list(items)
    if len(items) == 0:
        return []
    with _make_pool(workers, len(items)) as pool:
        return pool.starmap(func, [(item,) for item in items], chunksize=1)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
