"""Workers made with keyword arguments and a spawn context, run by one helper."""
import multiprocessing
import threading

counter = 0
CTX = multiprocessing.get_context("spawn")


def increment(times):
    global counter
    for _ in range(times):
        counter += 1


def _start_and_wait(worker):
    worker.start()
    worker.join()


def run_in_thread(times: int) -> int:
    _start_and_wait(threading.Thread(target=increment, kwargs={"times": times}, daemon=True))
    return counter


def run_in_process(times: int) -> int:
    _start_and_wait(CTX.Process(target=increment, kwargs={"times": times}, daemon=True))
    return counter


if __name__ == "__main__":
    print("thread:", run_in_thread(10))
    print("process:", run_in_process(10))
