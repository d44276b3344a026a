# expect-fail: test_no_deadlock_possible
# The waiter lock covers only the left fork: the right one is taken after the waiter is released.
import threading
import time


def eat(i):
    time.sleep(0.001)


waiter = threading.Lock()


def philosopher(i, forks, meals, eaten):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    for _ in range(meals):
        with waiter:
            left.acquire()
        right.acquire()
        eat(i)
        eaten[i] += 1
        right.release()
        left.release()


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
