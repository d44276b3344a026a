# A monitor: under one Condition a philosopher waits until both of its forks are free and takes both;
# after eating it puts them back while holding the Condition and notifies the table.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Condition()
    eaten = [0] * n

    def both_free(i):
        return not forks[i].locked() and not forks[(i + 1) % n].locked()

    def philosopher(i):
        left, right = forks[i], forks[(i + 1) % n]
        for _ in range(meals):
            with table:
                table.wait_for(lambda: both_free(i))
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
