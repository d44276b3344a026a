# expect-leftover: consumer
# The producer never sends the sentinel; run_pipeline takes as many results as
# it expects and returns without joining, leaving the consumer waiting in get().
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)


def consumer(queue, results):
    while True:
        item = queue.get()  # blocks-here
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
    out = [results.get() for _ in items]
    prod.join()
    return out
