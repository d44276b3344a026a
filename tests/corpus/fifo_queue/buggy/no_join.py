# expect-fail: test_processes_joined_nothing_left_running
# run_pipeline never joins its processes.
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
    Process(target=producer, args=(queue, items)).start()
    Process(target=consumer, args=(queue, results)).start()
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    return out
