# An explicit spawn context, map_async with a timeout, terminate in finally.
import multiprocessing as mp

CONTEXT = mp.get_context("spawn")


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    items = list(items)
    pool = CONTEXT.Pool(workers)
    try:
        return pool.map_async(func, items).get(timeout=120)
    finally:
        pool.terminate()
        pool.join()


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers))


if __name__ == "__main__":
    print(parallel_map(square, [1, 2, 3]))
