import multiprocessing
import threading

counter = 0


def increment(times):
    global counter
    i = 0
    while i < times:
        counter = counter + 1
        i += 1


class IncrementThread(threading.Thread):
    def __init__(self, times):
        super().__init__()
        self.times = times

    def run(self):
        increment(self.times)


class IncrementProcess(multiprocessing.Process):
    def __init__(self, times):
        super().__init__(name="incrementer")
        self.times = times

    def run(self):
        increment(self.times)


def run_in_thread(times):
    worker = IncrementThread(times)
    worker.start()
    worker.join()
    return counter


def run_in_process(times):
    worker = IncrementProcess(times)
    worker.start()
    worker.join()
    return counter
