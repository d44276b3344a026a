import multiprocessing
import threading

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
    p = multiprocessing.get_context("fork").Process(target=increment, args=(times,))
    p.start()
    p.join()
    return counter
