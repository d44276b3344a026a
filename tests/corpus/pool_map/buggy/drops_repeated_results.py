# expect-fail: test_results_in_input_order
# parallel_map drops a result equal to one it already has: an item that repeats gets one result only.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(processes=workers) as pool:
        results = pool.map(func, items)
    unique = []
    for result in results:
        if result not in unique:
            unique.append(result)
    return unique


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
