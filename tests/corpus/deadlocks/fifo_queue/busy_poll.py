# expect-diagnosis: loop that never ends
# After forwarding everything, the consumer spins until the parent has taken
# the results, instead of returning: it never blocks, uses the CPU and never ends
# (and the parent only reads the results after joining it). qsize() counts the items
# put and not yet taken at once; empty() would look at the pipe, which the queue's
# feeder thread fills later: on a loaded machine the loop could see it empty, end,
# and leave a real join-before-drain deadlock instead of a loop.
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
    while results.qsize(): pass  # blocks-here


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
