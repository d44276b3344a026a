# expect-fail: test_total_is_exact test_returns_counter_value_after_join
# The total is read before the workers are joined.
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
    total = counter.value
    for p in procs:
        p.join()
    return total
