# Polls until every async result is ready (ready() three times a second), then collects them in the order of items.
import time
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        jobs = [pool.apply_async(func, (item,)) for item in items]
        while not all(job.ready() for job in jobs):
            time.sleep(0.3)
        return [job.get() for job in jobs]


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
