# expect-diagnosis: lock never released
# Each worker waits, while holding the lock, for an event nobody sets: the
# first one to take the lock keeps it forever and the others wait to acquire it.
from multiprocessing import Event, Lock, Process, Value


def increment(counter, lock, times, ready=None):
    for _ in range(times):
        with lock:  # blocks-here
            counter.value += 1
            if ready is not None:
                ready.wait()  # blocks-here


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    never = Event()
    procs = [Process(target=increment, args=(counter, lock, times, never)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()  # blocks-here
    return counter.value
