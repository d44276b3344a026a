# Everything from an explicit spawn context; the loop of each worker takes the lock per step.
import multiprocessing

CTX = multiprocessing.get_context("spawn")


def increment(counter, lock, times):
    step = 0
    while step < times:
        with lock:
            counter.value = counter.value + 1
        step += 1


def run(workers=4, times=1000):
    counter = CTX.Value("i", 0)
    lock = CTX.Lock()
    procs = [CTX.Process(target=increment, args=(counter, lock, times), name=f"worker-{i}") for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    with lock:
        return counter.value


if __name__ == "__main__":
    print(run())
