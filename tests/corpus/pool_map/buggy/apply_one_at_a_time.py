# expect-fail: test_work_spread_over_worker_processes
# pool.apply waits for each result before handing out the next item: the items run one after another.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return [pool.apply(func, (item,)) for item in items]


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
