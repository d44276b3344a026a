# Ordered acquisition: every philosopher takes its lower-numbered fork first (acquire/release in try/finally).
import threading
import time


def eat(i):
    time.sleep(0.002)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n

    def philosopher(i):
        a, b = sorted((i, (i + 1) % n))
        for _ in range(meals):
            forks[a].acquire()
            try:
                forks[b].acquire()
                try:
                    eat(i)
                    eaten[i] += 1
                finally:
                    forks[b].release()
            finally:
                forks[a].release()

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
