# expect-fail: test_every_access_under_one_shared_lock test_workers_run_in_own_processes test_workers_run_at_once
# One process does all the work: the total is right, but there are no `workers` processes.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    worker = Process(target=increment, args=(counter, lock, workers * times))
    worker.start()
    worker.join()
    return counter.value
