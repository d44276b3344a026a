# expect-fail: test_no_side_effects_at_import
# run() is called at import time, without the __main__ guard.
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
    for p in procs:
        p.join()
    return counter.value


print("total:", run(2, 10))
