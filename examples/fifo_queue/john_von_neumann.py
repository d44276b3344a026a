from multiprocessing import Process, Queue

SENTINEL = None


def producer(queue, items):
    for item in items:
        queue.put(item)
    queue.put(SENTINEL)


def consumer(queue, results):
    while True:
        item = queue.get()
        if item is None:
            break
        results.put(item)
    results.put(SENTINEL)


def run_pipeline(items):
    queue = Queue()
    results = Queue()
    prod = Process(target=producer, args=(queue, items))
    cons = Process(target=consumer, args=(queue, results))
    prod.start()
    cons.start()
    forwarded = []
    while True:
        item = results.get()
        if item is None:
            break
        forwarded.append(item)
    prod.join()
    cons.join()
    return forwarded


if __name__ == "__main__":
    print(run_pipeline([1, 2, 3]))
