# expect-fail: test_every_philosopher_eats_its_meals
# Returns the total number of meals instead of the list of meals per philosopher.
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
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(eaten)
