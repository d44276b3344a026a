# expect-diagnosis: pool result that never comes
# square() ends its worker process for one input: the pool replaces the worker,
# but that task's result never arrives and map() waits forever.
import os
from multiprocessing import Pool


def square(x):
    if x == 3:
        os._exit(1)
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return pool.map(func, items)  # blocks-here


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
