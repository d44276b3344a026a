# expect-fail: test_workers_run_at_once
# Each worker is joined before the next one starts: correct total, but nothing runs at once.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    for _ in range(workers):
        p = Process(target=increment, args=(counter, lock, times))
        p.start()
        p.join()
    return counter.value
