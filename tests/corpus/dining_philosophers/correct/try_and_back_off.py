# Try and back off: hold the left fork, try the right with acquire(blocking=False), else put the left back.
import random
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    done = 0
    while done < meals:
        left.acquire()
        if right.acquire(blocking=False):
            try:
                eat(i)
                eaten[i] += 1
                done += 1
            finally:
                right.release()
                left.release()
        else:
            left.release()
            time.sleep(random.uniform(0.001, 0.005))


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
