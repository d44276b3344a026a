# expect-fail: test_pipeline_keeps_fifo_order test_pipeline_slow_producer
# The consumer waits for a first item, then takes items only while qsize() says there are some.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    item = queue.get()
    while item is not SENTINEL:
        results.put(item)
        if queue.qsize() == 0:
            break
        item = queue.get()
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
