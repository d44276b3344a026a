"""`== SENTINEL` with the walrus operator; the producer closes its queue and waits for it to be flushed."""
import multiprocessing as mp

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put_nowait(item)
    queue.put(SENTINEL)
    queue.close()
    queue.join_thread()


def consumer(queue, results):
    while (item := queue.get()) != SENTINEL:
        results.put(item)
    results.put(SENTINEL)
    results.close()


def run_pipeline(items):
    queue, results = mp.Queue(), mp.Queue()
    consumer_process = mp.Process(target=consumer, args=(queue, results), daemon=True)
    producer_process = mp.Process(target=producer, args=(queue, items), daemon=True)
    consumer_process.start()
    producer_process.start()
    received = []
    while (item := results.get()) != SENTINEL:
        received.append(item)
    producer_process.join()
    consumer_process.join()
    queue.close()
    results.close()
    return received
