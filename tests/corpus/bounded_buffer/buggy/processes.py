# expect-fail: test_run_returns_each_item_once test_threads_not_processes
# Producers and consumers as multiprocessing processes: a BoundedBuffer with threading locks cannot go to a child.
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
            self.cond.notify_all()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.cond.notify_all()
            return item


def _produce(buffer, p, items):
    for k in range(items):
        buffer.put((p, k))


def _consume(buffer):
    while buffer.get() is not None:
        pass


def run(producers=2, consumers=2, items=100, capacity=4):
    import multiprocessing

    buffer = BoundedBuffer(capacity)
    makers = [multiprocessing.Process(target=_produce, args=(buffer, p, items)) for p in range(producers)]
    takers = [multiprocessing.Process(target=_consume, args=(buffer,)) for _ in range(consumers)]
    for proc in makers + takers:
        proc.start()
    for proc in makers:
        proc.join()
    for _ in takers:
        buffer.put(None)
    for proc in takers:
        proc.join()
    return []
