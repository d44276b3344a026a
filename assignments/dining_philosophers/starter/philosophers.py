"""Dining philosophers: n philosopher threads share n forks around a table (see README.md)."""

import threading  # noqa: F401
import time


def eat(i):
    """Philosopher i eats; call it while holding both of i's forks."""
    time.sleep(0.001)


def dine(n=5, meals=3):
    """Run n philosopher threads, each eating `meals` times; return the meals each one ate."""
    raise NotImplementedError("write dine(n, meals)")


if __name__ == "__main__":
    print(dine())
