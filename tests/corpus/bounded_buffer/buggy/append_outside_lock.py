# expect-fail: test_storage_used_under_one_lock test_never_more_than_capacity
# expect-only-these
# The append slipped out of the `with` block: two producers can both see room and both append (in run(3, 2, 25, 2)
# on every run: a thread about to use the storage holding no lock waits until the others did the same).
import threading
from collections import deque


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = deque()
        self.cond = threading.Condition()

    def put(self, item):
        with self.cond:
            while len(self.items) >= self.capacity:
                self.cond.wait()
        self.items.append(item)
        with self.cond:
            self.cond.notify_all()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.cond.notify_all()
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
