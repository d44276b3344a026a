# expect-fail: test_producer_and_consumer_in_two_child_processes test_processes_joined_nothing_left_running
# Threads instead of processes (with queue.Queue): the output is right, but nothing ran in another process.
import queue as queue_module
import threading

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
    queue, results = queue_module.Queue(), queue_module.Queue()
    workers = [
        threading.Thread(target=producer, args=(queue, items)),
        threading.Thread(target=consumer, args=(queue, results)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    return out
