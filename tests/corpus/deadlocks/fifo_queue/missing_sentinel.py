# expect-diagnosis: missing sentinel
# The producer never puts the sentinel, so the consumer waits in get() forever.
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
    out = []
    while True:
        item = results.get()  # blocks-here
        if item is SENTINEL:
            break
        out.append(item)
    prod.join()
    cons.join()
    return out
