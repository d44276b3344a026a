# expect-fail: test_no_deadlock_possible
# A doorman Semaphore(n) seats all n philosophers, so it prevents nothing: left then right can still close a circle.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten, seats):
    n = len(forks)
    for _ in range(meals):
        with seats:
            with forks[i]:
                with forks[(i + 1) % n]:
                    eat(i)
                    eaten[i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    eaten = [0] * n
    seats = threading.Semaphore(n)
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten, seats)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
