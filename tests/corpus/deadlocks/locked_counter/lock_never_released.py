# expect-diagnosis: lock never released
# increment() acquires the lock and never releases it: the first worker blocks
# on its second acquire, every other worker on its first.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        lock.acquire()  # blocks-here
        counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()  # blocks-here
    return counter.value
