# expect-fail: test_workers_run_in_own_processes test_workers_run_at_once
# Threads instead of processes: the lock works, but no worker process ever runs.
import threading
from multiprocessing import Lock, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    threads = [threading.Thread(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counter.value
