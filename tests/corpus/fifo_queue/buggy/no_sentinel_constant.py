# expect-fail: test_sentinel_is_none
# The pipeline uses None as its end marker but never defines the module constant SENTINEL.
from multiprocessing import Process, Queue


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(None)


def consumer(queue, results):
    while True:
        item = queue.get()
        if item is None:
            break
        results.put(item)
    results.put(None)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    workers = [Process(target=producer, args=(queue, items)), Process(target=consumer, args=(queue, results))]
    for worker in workers:
        worker.start()
    out = []
    while (item := results.get()) is not None:
        out.append(item)
    for worker in workers:
        worker.join()
    return out


if __name__ == "__main__":
    print(run_pipeline([3, 1, 2]))
