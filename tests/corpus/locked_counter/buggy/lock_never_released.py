# expect-fail: test_increment_adds_times
# expect-timeout: test_total_is_exact test_every_access_under_one_shared_lock test_workers_run_in_own_processes test_workers_run_at_once test_returns_counter_value_after_join
# expect-deadlock: test_total_is_exact test_every_access_under_one_shared_lock test_workers_run_in_own_processes test_workers_run_at_once test_returns_counter_value_after_join
# The lock is acquired and never released: the second acquire waits forever (deadlock).
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        lock.acquire()
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
