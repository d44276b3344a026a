# Each worker gets a lock of its own: every worker holds a lock, but never the same one.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    locks = [Lock() for _ in range(workers)]
    procs = [Process(target=increment, args=(counter, locks[i], times)) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
