"""Reference solution: fifo_queue."""

from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        item = queue.get()
        if item is SENTINEL:
            break
        results.put(item)
    results.put(SENTINEL)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    workers = [
        Process(target=producer, args=(queue, items)),
        Process(target=consumer, args=(queue, results)),
    ]
    for worker in workers:
        worker.start()
    out = []
    while True:  # take every result before joining: a child cannot end while its items are unread
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    for worker in workers:
        worker.join()
    return out


if __name__ == "__main__":
    print(run_pipeline([3, "two", 1.0, (4, 5)]))
