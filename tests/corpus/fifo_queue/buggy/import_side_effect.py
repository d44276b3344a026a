# expect-fail: test_no_side_effects_at_import
# The module prints a message when it is imported.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)

print("fifo_queue loaded")


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
