# expect-fail: test_storage_used_under_one_lock
# Semaphores count the slots, but nothing excludes two threads using the deque at once.
import threading
from collections import deque


class BoundedBuffer:
    def __init__(self, capacity):
        self.items = deque()
        self.free = threading.Semaphore(capacity)
        self.full = threading.Semaphore(0)

    def put(self, item):
        self.free.acquire()
        self.items.append(item)
        self.full.release()

    def get(self):
        self.full.acquire()
        item = self.items.popleft()
        self.free.release()
        return item


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    results = []
    results_lock = threading.Lock()

    def produce(p):
        for k in range(items):
            buffer.put((p, k))

    def consume():
        while True:
            item = buffer.get()
            if item is None:
                return
            with results_lock:
                results.append(item)

    makers = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    takers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in makers + takers:
        t.start()
    for t in makers:
        t.join()
    for _ in takers:
        buffer.put(None)
    for t in takers:
        t.join()
    return results
