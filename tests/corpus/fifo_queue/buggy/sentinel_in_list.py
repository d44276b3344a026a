# expect-fail: test_pipeline_keeps_fifo_order test_pipeline_empty_list test_pipeline_slow_producer test_pipeline_large_items
# run_pipeline appends each result before looking at it, so the sentinel ends up in the list.
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
    prod = Process(target=producer, args=(queue, items))
    cons = Process(target=consumer, args=(queue, results))
    prod.start()
    cons.start()
    out = []
    while True:
        item = results.get()
        out.append(item)
        if item is SENTINEL:
            break
    prod.join()
    cons.join()
    return out
