# expect-fail: test_pipeline_slow_producer test_pipeline_large_items
# run_pipeline sorts the results whenever the items can be compared (mixed items cannot, so they stay in order).
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
    workers = [Process(target=producer, args=(queue, items)), Process(target=consumer, args=(queue, results))]
    for worker in workers:
        worker.start()
    out = []
    while (item := results.get()) is not SENTINEL:
        out.append(item)
    for worker in workers:
        worker.join()
    try:
        return sorted(out)
    except TypeError:
        return out


if __name__ == "__main__":
    print(run_pipeline([3, 1, 2]))
