# expect-fail: test_every_access_under_one_shared_lock test_workers_run_in_own_processes test_workers_run_at_once test_returns_counter_value_after_join
# The workers are started but never joined: run() reads the counter while they still run.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    for _ in range(workers):
        Process(target=increment, args=(counter, lock, times)).start()
    return counter.value
