import multiprocessing as mp
from threading import Thread

counter = 0


def increment(times):
    global counter
    for _ in range(times):
        counter += 1


def run_in_thread(times):
    t = Thread(target=increment, args=(times,))
    t.start()
    t.join()
    return counter


def run_in_process(times):
    p = mp.Process(target=increment, args=(times,))
    p.start()
    p.join()
    return counter


if __name__ == "__main__":
    print(run_in_thread(1000), run_in_process(1000))
