# imap keeps the order; the list is built before the pool is terminated.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    results = []
    with Pool(workers) as pool:
        for result in pool.imap(func, items):
            results.append(result)
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
