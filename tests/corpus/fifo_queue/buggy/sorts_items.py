# expect-fail: test_producer_puts_items_then_sentinel test_pipeline_keeps_fifo_order test_pipeline_slow_producer
# The producer sorts the items (by their text, so mixed types do not raise) instead of keeping their order.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in sorted(items, key=repr):
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
