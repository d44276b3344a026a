# expect-fail: test_eats_holding_both_forks_while_neighbours_do_not test_each_fork_taken_only_by_its_two_philosophers
# Philosopher i takes forks i and i + 2 (lower first): fork 2 is shared by philosophers 0 and 2, who are not neighbours.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    a, b = sorted((i, (i + 2) % len(forks)))
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
    return eaten
