# expect-fail: test_dine_defaults
# dine() defaults to one meal each, not three: dine(n=5, meals=1).
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    a, b = sorted((i, (i + 1) % len(forks)))
    for _ in range(meals):
        with forks[a]:
            with forks[b]:
                eat(i)
                eaten[i] += 1


def dine(n=5, meals=1):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return eaten


if __name__ == "__main__":
    print(dine())
