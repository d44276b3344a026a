# The textbook version: `with Pool(...)` terminates the pool on exit.
from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, list(range(n)), workers))


if __name__ == "__main__":
    print(sum_of_squares(10))
