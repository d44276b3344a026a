# Pool created with a positional count, closed and joined by hand; sum_of_squares hands workers on by position.
import multiprocessing


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    pool = multiprocessing.Pool(workers)
    try:
        results = pool.map(func, list(items))
    finally:
        pool.close()
        pool.join()
    return results


def sum_of_squares(n, workers=4):
    squares = parallel_map(square, list(range(n)), workers)
    return sum(squares)
