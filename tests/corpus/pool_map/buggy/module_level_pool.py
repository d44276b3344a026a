# expect-fail: test_no_side_effects_at_import test_no_workers_left_after_return test_pool_has_workers_processes test_work_spread_over_worker_processes
# expect-timeout: test_sum_of_squares
# A pool created when the module is imported, never closed (and blind to `workers`).
from multiprocessing import Pool

POOL = Pool(4)


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    return POOL.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
