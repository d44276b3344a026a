# Each philosopher sits down 50 ms after the last, as in buggy/naive_staggered.py, and takes its lower-numbered
# fork first: the same program with its circle of forks made impossible (benchmarks/time_to_verdict.py times the two).
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    time.sleep(0.05 * i)
    first, second = sorted((i, (i + 1) % len(forks)))
    for _ in range(meals):
        with forks[first]:
            with forks[second]:
                eat(i)
                eaten[i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
