# A monitor: under a Condition's lock a philosopher waits until both forks are free, then takes both;
# it puts them back, then notifies the table.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Condition()
    eaten = [0] * n

    def philosopher(i):
        mine = (forks[i], forks[(i + 1) % n])
        for _ in range(meals):
            with table:
                table.wait_for(lambda: not mine[0].locked() and not mine[1].locked())
                mine[0].acquire()
                mine[1].acquire()
            eat(i)
            eaten[i] += 1
            mine[1].release()
            mine[0].release()
            with table:
                table.notify_all()

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
