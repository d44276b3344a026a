# expect-fail: test_producer_and_consumer_in_two_child_processes
# Only the producer gets a process: run_pipeline runs the consumer itself.
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
    prod.start()
    consumer(queue, results)
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    prod.join()
    return out
