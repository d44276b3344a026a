# expect-fail: test_exception_propagates
# The task's exception is replaced by a RuntimeError.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        try:
            return pool.map(func, items)
        except Exception as exc:
            raise RuntimeError(f"parallel_map failed: {exc}") from exc


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
