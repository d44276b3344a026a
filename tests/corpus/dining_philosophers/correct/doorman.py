# A doorman: Semaphore(n - 1) seats at most n - 1 philosophers, who then take left, then right.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    seats = threading.Semaphore(n - 1)
    eaten = [0] * n

    def philosopher(i):
        for _ in range(meals):
            with seats:
                with forks[i]:
                    with forks[(i + 1) % n]:
                        eat(i)
                        eaten[i] += 1

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
