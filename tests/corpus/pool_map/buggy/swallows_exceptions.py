# expect-fail: test_exception_propagates
# A failed item gives None instead of raising.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        pending = [pool.apply_async(func, (item,)) for item in items]
        results = []
        for job in pending:
            try:
                results.append(job.get())
            except Exception:
                results.append(None)
        return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
