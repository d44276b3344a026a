# The value is read before the lock is taken: another worker can write in between.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        v = counter.value
        with lock:
            counter.value = v + 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value

