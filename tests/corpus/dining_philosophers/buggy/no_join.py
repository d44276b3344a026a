# expect-fail: test_every_thread_joined
# Daemon philosophers are never joined: dine() polls the meal counts until everyone has eaten.
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
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    for i in range(n):
        threading.Thread(target=philosopher, args=(i, forks, meals, eaten), daemon=True).start()
    while sum(eaten) < n * meals:
        time.sleep(0.01)
    return eaten
