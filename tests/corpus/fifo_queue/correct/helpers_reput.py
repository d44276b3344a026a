"""Helper functions; the consumer puts the sentinel back for any other consumer (a common pattern)."""
import multiprocessing
import queue as queue_module

SENTINEL = None


def producer(queue, items):
    for position in range(len(items)):
        queue.put(items[position])
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        try:
            item = queue.get(timeout=1)
        except queue_module.Empty:
            continue  # nothing yet: the producer is slow, keep waiting for the sentinel
        if item is SENTINEL:
            queue.put(SENTINEL)
            break
        results.put(item)
    results.put(SENTINEL)


def _start(target, *args):
    process = multiprocessing.Process(target=target, args=args)
    process.start()
    return process


def _collect(results):
    out = []
    item = results.get()
    while item is not SENTINEL:
        out.append(item)
        item = results.get()
    return out


def run_pipeline(items):
    queue, results = multiprocessing.Queue(), multiprocessing.Queue()
    processes = [_start(producer, queue, items), _start(consumer, queue, results)]
    try:
        return _collect(results)
    finally:
        for process in processes:
            process.join()
