# lock.acquire() / try / finally: lock.release(), with the read and the write on separate lines.
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        lock.acquire()
        try:
            current = counter.value
            counter.value = current + 1
        finally:
            lock.release()


def start_workers(counter, lock, workers, times):
    workers_list = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for worker in workers_list:
        worker.start()
    return workers_list


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    for worker in start_workers(counter, lock, workers, times):
        worker.join()
    return counter.value


if __name__ == "__main__":
    print(run())
