"""Reference solution: pool_map."""

from multiprocessing import Pool


def square(x):
    return x * x


def parallel_map(func, items, workers=4):
    with Pool(processes=workers) as pool:
        return pool.map(func, items)


def sum_of_squares(n, workers=4):
    return sum(parallel_map(square, range(n), workers=workers))


if __name__ == "__main__":
    print(parallel_map(square, [1, 2, 3, 4, 5]))
    print(sum_of_squares(10))
