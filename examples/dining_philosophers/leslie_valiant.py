# A waiter: a Lock held while picking up both forks, released before eating.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, waiter, meals, eaten):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    for _ in range(meals):
        with waiter:
            left.acquire()
            right.acquire()
        try:
            eat(i)
            eaten[i] += 1
        finally:
            right.release()
            left.release()


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    waiter = threading.Lock()
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, waiter, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
