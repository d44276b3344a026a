"""Ordered acquisition with nested `with` blocks (the reference solution)."""

import threading
import time


def eat(i):
    time.sleep(0.001)


def _philosopher(i, forks, meals, eaten):
    left, right = i, (i + 1) % len(forks)
    first, second = min(left, right), max(left, right)
    for _ in range(meals):
        with forks[first]:
            with forks[second]:
                eat(i)
                eaten[i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=_philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return eaten


if __name__ == "__main__":
    print(dine())
