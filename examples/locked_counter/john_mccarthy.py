# Coarse locking: each worker holds the lock for its whole loop (correct, only less parallel).
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    with lock:
        for _ in range(times):
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value


if __name__ == "__main__":
    print(run())
