"""Reference solution: isolation."""

import threading
from multiprocessing import Process

counter = 0


def increment(times):
    global counter
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    thread = threading.Thread(target=increment, args=(times,))
    thread.start()
    thread.join()
    return counter


def run_in_process(times):
    process = Process(target=increment, args=(times,))
    process.start()
    process.join()
    return counter


if __name__ == "__main__":
    print("after a thread:", run_in_thread(1000))
    print("after a process:", run_in_process(1000))
