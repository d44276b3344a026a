# expect-fail: test_thread_ran_increment_and_was_joined
import threading
import time
from multiprocessing import Process

counter = 0


def increment(times):
    global counter
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    global counter
    t = threading.Thread(target=time.sleep, args=(0.01,))
    t.start()
    t.join()
    counter += times
    return counter


def run_in_process(times):
    p = Process(target=increment, args=(times,))
    p.start()
    p.join()
    return counter
