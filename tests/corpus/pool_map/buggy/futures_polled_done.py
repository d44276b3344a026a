# expect-fail: test_results_in_input_order
# Submits to a ProcessPoolExecutor and polls Future.done() twice a second, keeping each result once it is done.
import time
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    results = []
    with ProcessPoolExecutor(workers) as pool:
        pending = [pool.submit(func, item) for item in items]
        while pending:
            for future in list(pending):
                if future.done():
                    results.append(future.result())
                    pending.remove(future)
            time.sleep(0.5)
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
