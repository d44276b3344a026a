"""Pool map: apply a function to every item with a multiprocessing.Pool (see README.md)."""

from multiprocessing import Pool  # noqa: F401


def square(x):
    """Return x * x."""
    raise NotImplementedError("write square(x)")


def parallel_map(func, items, workers=4):
    """Apply func to every item with a Pool of `workers` processes; return the results in the order of items."""
    raise NotImplementedError("write parallel_map(func, items, workers)")


def sum_of_squares(n, workers=4):
    """Return sum(x * x for x in range(n)), computed with parallel_map(square, ...)."""
    raise NotImplementedError("write sum_of_squares(n, workers)")


if __name__ == "__main__":
    print(parallel_map(square, [1, 2, 3, 4, 5]))
    print(sum_of_squares(10))
