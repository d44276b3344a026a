# expect-fail: test_consumer_forwards_until_sentinel
# The consumer forwards the sentinel inside its loop and once more after it.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        item = queue.get()
        results.put(item)
        if item is SENTINEL:
            break
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
