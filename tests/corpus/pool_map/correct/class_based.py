# A small class around the pool; close() and join() on leaving the with block.
from multiprocessing import Pool


class Mapper:
    def __init__(self, workers):
        self.workers = workers
        self.pool = None

    def __enter__(self):
        self.pool = Pool(self.workers)
        return self

    def __exit__(self, *exc_info):
        self.pool.close()
        self.pool.join()
        return False

    def map(self, func, items):
        return self.pool.map(func, items)


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Mapper(workers) as mapper:
        return mapper.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))
