# expect-fail: test_run_defaults
# run's defaults are 8 workers of 500: run() still returns 4000, but not from the 4 workers of 1000 asked for.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=8, times=500):
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
