# A monitor built on a Lock of its own, taken with acquire() and release(): a philosopher waits in a
# `while` loop around wait() until both of its forks are free, takes both, lets go of the monitor to eat,
# then takes it again to put the forks back and wake the others.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, table, meals, eaten):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    for _ in range(meals):
        table.acquire()
        while left.locked() or right.locked():
            table.wait()
        left.acquire()
        right.acquire()
        table.release()
        eat(i)
        eaten[i] += 1
        table.acquire()
        left.release()
        right.release()
        table.notify_all()
        table.release()


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Condition(threading.Lock())
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, table, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
