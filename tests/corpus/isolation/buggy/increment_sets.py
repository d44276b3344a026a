# expect-fail: test_increment_adds_times test_thread_result_shows_the_change
import threading
from multiprocessing import Process

counter = 0


def increment(times):
    global counter
    counter = 0
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    t = threading.Thread(target=increment, args=(times,))
    t.start()
    t.join()
    return counter


def run_in_process(times):
    p = Process(target=increment, args=(times,))
    p.start()
    p.join()
    return counter
