# expect-fail: test_total_is_exact test_every_access_under_one_shared_lock test_increment_holds_the_lock
# No lock at all: the total is often right anyway, the lockset shows every access unprotected.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
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

