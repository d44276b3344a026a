"""A JoinableQueue (a Queue that also counts finished tasks): the consumer calls task_done() for each item."""
from multiprocessing import JoinableQueue, Process

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        item = queue.get()
        queue.task_done()
        if item is SENTINEL:
            break
        results.put(item)
    results.put(SENTINEL)


def run_pipeline(items):
    queue, results = JoinableQueue(), JoinableQueue()
    procs = [Process(target=producer, args=(queue, items)), Process(target=consumer, args=(queue, results))]
    for p in procs:
        p.start()
    out = []
    for item in iter(results.get, SENTINEL):
        out.append(item)
    queue.join()
    for p in procs:
        p.join()
    return out
