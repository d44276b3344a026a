# expect-fail: test_producer_and_consumer_in_two_child_processes
# One child process runs the producer and then the consumer, one after the other.
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

def produce_then_consume(queue, results, items):
    producer(queue, items)
    consumer(queue, results)


def run_pipeline(items):
    queue, results = Queue(), Queue()
    worker = Process(target=produce_then_consume, args=(queue, results, items))
    worker.start()
    out = []
    while True:
        item = results.get()
        if item is SENTINEL:
            break
        out.append(item)
    worker.join()
    return out
