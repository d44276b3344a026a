# expect-fail: test_results_in_input_order
# Results in the order the tasks finish, not the order of items.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return list(pool.imap_unordered(func, items))


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
