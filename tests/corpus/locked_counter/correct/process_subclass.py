# A Process subclass that keeps the shared counter and lock as attributes.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


class Worker(Process):
    def __init__(self, counter, lock, times):
        super().__init__()
        self.counter = counter
        self.lock = lock
        self.times = times

    def run(self):
        increment(self.counter, self.lock, self.times)


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    team = [Worker(counter, lock, times) for _ in range(workers)]
    for worker in team:
        worker.start()
    for worker in team:
        worker.join()
    return counter.value


if __name__ == "__main__":
    print(run())
