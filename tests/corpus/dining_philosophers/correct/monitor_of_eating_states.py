# A monitor of eating states: under one Condition a philosopher waits until neither neighbour is eating,
# marks itself eating, and only then takes its forks, left then right, outside the Condition. The forks are
# taken in a circle, but a neighbour never holds one at that moment: the states keep the circle open.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    table = threading.Condition()
    eating = [False] * n
    eaten = [0] * n

    def philosopher(i):
        left, right = forks[i], forks[(i + 1) % n]
        for _ in range(meals):
            with table:
                table.wait_for(lambda: not eating[(i - 1) % n] and not eating[(i + 1) % n])
                eating[i] = True
            with left:
                with right:
                    eat(i)
                    eaten[i] += 1
            with table:
                eating[i] = False
                table.notify_all()

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
