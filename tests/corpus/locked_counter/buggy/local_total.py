# expect-fail: test_returns_counter_value_after_join
# run() returns a total it computed itself instead of counter.value.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    total = 0
    for p in procs:
        p.join()
        total += times
    return total
