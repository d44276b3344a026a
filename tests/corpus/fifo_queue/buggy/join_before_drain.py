# expect-timeout: test_pipeline_large_items
# expect-deadlock: test_pipeline_large_items
# run_pipeline joins both processes before reading the results: with large items the consumer
# cannot end until they are read, so join() never returns.
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
    prod.join()
    cons.join()
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    return out
