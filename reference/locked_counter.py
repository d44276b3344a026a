"""Reference solution: locked_counter."""

from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    processes = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return counter.value


if __name__ == "__main__":
    print(run())
