# expect-fail: test_one_thread_per_philosopher
# One thread eats for every philosopher in turn: no philosopher has a thread of its own.
import threading
import time


def eat(i):
    time.sleep(0.001)


def _table(forks, meals, eaten):
    n = len(forks)
    for _ in range(meals):
        for i in range(n):
            a, b = sorted((i, (i + 1) % n))
            with forks[a]:
                with forks[b]:
                    eat(i)
                    eaten[i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    thread = threading.Thread(target=_table, args=(forks, meals, eaten))
    thread.start()
    thread.join()
    return eaten


if __name__ == "__main__":
    print(dine())
