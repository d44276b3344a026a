# hostile: stray files named like standard modules beside the solution (queue.py, threading.py, multiprocessing.py)
# expect-message: queue.py
# expect-message: threading.py
# expect-message: multiprocessing.py
from multiprocessing import Pool


def _sq(x):
    return x * x


def answer():
    return 42


def squares(n):
    with Pool(2) as pool:
        return pool.map(_sq, range(n))
