# expect-fail: test_results_in_input_order test_work_spread_over_worker_processes
# Maps square whatever func it is given.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return pool.map(square, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
