# expect-fail: test_linked_by_multiprocessing_queues
# The pipeline works, but its queues are multiprocessing.SimpleQueue objects, not the multiprocessing.Queue asked for.
from multiprocessing import Process, SimpleQueue

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
    queue, results = SimpleQueue(), SimpleQueue()
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
    print(run_pipeline([3, 1, 2]))
