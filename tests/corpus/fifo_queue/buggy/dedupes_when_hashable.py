# expect-fail: test_pipeline_slow_producer
# The consumer forwards each item only once: a repeated item is dropped (when the items can be hashed).
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    seen = set()
    while True:
        item = queue.get()
        if item is SENTINEL:
            break
        try:
            if item in seen:
                continue
            seen.add(item)
        except TypeError:
            pass
        results.put(item)
    results.put(SENTINEL)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    workers = [Process(target=producer, args=(queue, items)), Process(target=consumer, args=(queue, results))]
    for worker in workers:
        worker.start()
    out = []
    while (item := results.get()) is not SENTINEL:
        out.append(item)
    for worker in workers:
        worker.join()
    return out


if __name__ == "__main__":
    print(run_pipeline([3, 1, 3]))
