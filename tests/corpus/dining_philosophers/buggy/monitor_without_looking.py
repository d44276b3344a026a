# expect-fail: test_no_deadlock_possible
# A monitor that takes both forks under its Condition without waiting for them to be free, and puts them
# back under it too: a philosopher can wait for a fork while holding the Condition that its neighbour,
# who holds the fork, needs to put it back.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Condition()
    eaten = [0] * n

    def philosopher(i):
        left, right = forks[i], forks[(i + 1) % n]
        for _ in range(meals):
            with table:
                left.acquire()
                right.acquire()
            eat(i)
            eaten[i] += 1
            with table:
                right.release()
                left.release()
                table.notify_all()

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
