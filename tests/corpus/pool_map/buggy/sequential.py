# expect-fail: test_work_spread_over_worker_processes test_pool_has_workers_processes
# No pool at all: the items are mapped one after another in the caller.
def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    return [func(item) for item in items]


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
