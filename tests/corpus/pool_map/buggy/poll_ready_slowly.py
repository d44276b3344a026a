# expect-fail: test_results_in_input_order
# Polls the async results every 0.3 s and keeps each one as soon as it is ready: results in completion order.
import time
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    results = []
    with Pool(workers) as pool:
        pending = [pool.apply_async(func, (item,)) for item in items]
        while pending:
            for job in list(pending):
                if job.ready():
                    results.append(job.get())
                    pending.remove(job)
            time.sleep(0.3)
    return results


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
