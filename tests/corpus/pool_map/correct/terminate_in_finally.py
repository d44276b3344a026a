# terminate() in finally (it stops and joins the workers itself); workers replaced every 4 tasks.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    pool = Pool(workers, maxtasksperchild=4)
    try:
        return pool.map(func, items, chunksize=1)
    finally:
        pool.terminate()


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))
