# expect-fail: test_process_ran_increment_in_one_joined_child
import threading
from multiprocessing import Process

counter = 0


def increment(times):
    global counter
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    t = threading.Thread(target=increment, args=(times,))
    t.start()
    t.join()
    return counter


def run_in_process(times):
    half = times // 2
    ps = [Process(target=increment, args=(half,)), Process(target=increment, args=(times - half,))]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    return counter
