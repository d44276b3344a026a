# expect-fail: test_no_deadlock_possible
# expect-timeout: test_every_philosopher_eats_its_meals test_eats_holding_both_forks_while_neighbours_do_not
# expect-deadlock: test_every_philosopher_eats_its_meals test_eats_holding_both_forks_while_neighbours_do_not
# fixed-twin: correct/staggered_lowest_first.py
# Left fork, then right fork, each philosopher sitting down 50 ms after the last: a recorded run hardly ever gets
# stuck, but a circle of forks can still close, so dine() may never return, on every run.
import threading
import time


def eat(i):
    time.sleep(0.001)


def philosopher(i, forks, meals, eaten):
    time.sleep(0.05 * i)
    left, right = forks[i], forks[(i + 1) % len(forks)]
    for _ in range(meals):
        with left:
            with right:
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
