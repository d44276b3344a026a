# expect-fail: test_total_is_exact test_every_access_under_one_shared_lock test_increment_holds_the_lock
# The value is read under the lock but written after releasing it.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            v = counter.value
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

