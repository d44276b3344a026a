# close() and join() in a finally block.
import multiprocessing


def square(x):
    return x ** 2


def parallel_map(func, items, workers=4):
    pool = multiprocessing.Pool(processes=workers)
    try:
        results = pool.map(func, items)
    finally:
        pool.close()
        pool.join()
    return results


def sum_of_squares(n, workers=4):
    total = 0
    for value in parallel_map(square, range(n), workers=workers):
        total += value
    return total
