# expect-fail: test_total_is_exact test_every_access_under_one_shared_lock test_increment_holds_the_lock
# Value('i', 0, lock=False) has no lock of its own, and increment takes none either.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0, lock=False)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
