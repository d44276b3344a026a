# expect-fail: test_no_deadlock_possible
# A monitor of eating states that marks a philosopher eating only once it holds both forks: neighbours
# both see the other not eating, each takes its left fork, and the circle can close.
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
            with left:
                with right:
                    with table:
                        eating[i] = True
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
