# expect-fail: test_no_deadlock_possible
# Thinks between meals and takes left, then right with acquire()/release(): the order can still close a circle.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    n = len(forks)
    for _ in range(meals):
        time.sleep(0.002)  # think
        forks[i].acquire()
        forks[(i + 1) % n].acquire()
        eat(i)
        eaten[i] += 1
        forks[(i + 1) % n].release()
        forks[i].release()


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
