# `with lock:` around each increment; the processes are started and joined in two loops.
import multiprocessing


def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def run(workers=4, times=1000):
    counter = multiprocessing.Value("i", 0)
    lock = multiprocessing.Lock()
    processes = []
    for _ in range(workers):
        process = multiprocessing.Process(target=increment, kwargs={"counter": counter, "lock": lock, "times": times})
        process.start()
        processes.append(process)
    for process in processes:
        process.join()
    return counter.value


if __name__ == "__main__":
    print(run())
