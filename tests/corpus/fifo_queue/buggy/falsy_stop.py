# expect-fail: test_consumer_forwards_until_sentinel test_pipeline_keeps_fifo_order
# The consumer stops at any false item (0, "") instead of only at the sentinel.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        item = queue.get()
        if not item:
            break
        results.put(item)
    results.put(SENTINEL)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    prod = Process(target=producer, args=(queue, items))
    cons = Process(target=consumer, args=(queue, results))
    prod.start()
    cons.start()
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    prod.join()
    cons.join()
    return out
