# States and a semaphore per philosopher: a hungry philosopher is let in (its semaphore released) only when
# neither neighbour is eating, then takes its forks, left then right, outside the mutex.
import threading
import time


def eat(i):
    time.sleep(0.001)


def dine(n=5, meals=3):
    forks = [threading.Lock() for _ in range(n)]
    mutex = threading.Lock()
    state = ["thinking"] * n
    granted = [threading.Semaphore(0) for _ in range(n)]
    eaten = [0] * n

    def test(i):
        if state[i] == "hungry" and state[(i - 1) % n] != "eating" and state[(i + 1) % n] != "eating":
            state[i] = "eating"
            granted[i].release()

    def philosopher(i):
        for _ in range(meals):
            with mutex:
                state[i] = "hungry"
                test(i)
            granted[i].acquire()
            forks[i].acquire()
            forks[(i + 1) % n].acquire()
            eat(i)
            eaten[i] += 1
            forks[(i + 1) % n].release()
            forks[i].release()
            with mutex:
                state[i] = "thinking"
                test((i - 1) % n)
                test((i + 1) % n)

    threads = [threading.Thread(target=philosopher, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return eaten
