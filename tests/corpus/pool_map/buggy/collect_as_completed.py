# expect-fail: test_results_in_input_order
# apply_async with a callback: results are appended as they complete.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    results = []
    with Pool(workers) as pool:
        pending = [pool.apply_async(func, (item,), callback=results.append) for item in items]
        for job in pending:
            job.wait()
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
