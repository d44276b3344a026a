# expect-diagnosis: locks taken in a circle
# Every philosopher takes its left fork, then its right one; the barrier makes all five hold their
# left fork before any reaches for the right one, so the run deadlocks every time.
import threading


def philosopher(i, forks, meals, eaten, table):
    left, right = forks[i], forks[(i + 1) % len(forks)]
    for _ in range(meals):
        with left:
            table.wait()
            with right:  # blocks-here
                eaten[i] += 1


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Barrier(n)
    eaten = [0] * n
    threads = [threading.Thread(target=philosopher, args=(i, forks, meals, eaten, table)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()  # blocks-here
    return eaten
