# expect-fail: test_process_result_unchanged test_process_ran_increment_in_one_joined_child
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
    p = Process(target=increment, args=(times,))
    p.run()
    return counter
