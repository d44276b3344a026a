# expect-diagnosis: loop that never ends
# The consumer spins on empty() with a condition that is always true, never
# blocking: it uses the CPU and never ends.
from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while queue.empty() or not queue.empty(): pass  # blocks-here
    results.put(SENTINEL)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    prod = Process(target=producer, args=(queue, items))
    cons = Process(target=consumer, args=(queue, results))
    prod.start()
    cons.start()
    prod.join()
    cons.join()  # blocks-here
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    return out
