# expect-fail: test_pipeline_keeps_fifo_order test_pipeline_empty_list test_pipeline_slow_producer test_pipeline_large_items test_producer_and_consumer_in_two_child_processes test_processes_joined_nothing_left_running
# queue.Queue (for threads) between processes: it cannot be sent to a spawned child.
import queue as queue_module
from multiprocessing import Process

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
