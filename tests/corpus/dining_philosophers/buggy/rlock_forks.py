# expect-fail: test_each_fork_is_a_lock
# The forks are threading.RLock objects, not threading.Lock ones.
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


def dine(n=5, meals=3):
    forks = [threading.RLock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return eaten


if __name__ == "__main__":
    print(dine())
