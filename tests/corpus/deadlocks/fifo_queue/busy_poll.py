# expect-diagnosis: loop that never ends
# After forwarding everything, the consumer spins until the parent has taken
# the results, instead of returning: it never blocks, uses the CPU and never ends
# (and the parent only reads the results after joining it).
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
    while not results.empty(): pass  # blocks-here


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
