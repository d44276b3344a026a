"""Process subclasses from an explicit spawn context; the loops use iter(get, SENTINEL)."""
import multiprocessing

SENTINEL = None
CTX = multiprocessing.get_context("spawn")


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    for item in iter(queue.get, SENTINEL):
        results.put(item)
    results.put(SENTINEL)


class Producer(CTX.Process):
    def __init__(self, queue, items):
        super().__init__(name="producer")
        self.queue = queue
        self.items = items

    def run(self):
        producer(self.queue, self.items)


class Consumer(CTX.Process):
    def __init__(self, queue, results):
        super().__init__(name="consumer")
        self.queue = queue
        self.results = results

    def run(self):
        consumer(self.queue, self.results)


def run_pipeline(items):
    queue, results = CTX.Queue(), CTX.Queue()
    workers = [Producer(queue, list(items)), Consumer(queue, results)]
    for worker in workers:
        worker.start()
    out = list(iter(results.get, SENTINEL))
    for worker in workers:
        worker.join()
    return out
