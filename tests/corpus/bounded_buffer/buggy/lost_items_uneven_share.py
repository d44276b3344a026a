# expect-fail: test_run_returns_each_item_once
# Each consumer takes its share, producers * items // consumers: when that does not divide, items are left over.
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


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    share = producers * items // consumers
    taken = [[] for _ in range(consumers)]

    def consume(c):
        for _ in range(share):
            taken[c].append(buffer.get())

    makers = [threading.Thread(target=lambda p=p: [buffer.put((p, k)) for k in range(items)]) for p in range(producers)]
    takers = [threading.Thread(target=consume, args=(c,)) for c in range(consumers)]
    for t in makers + takers:
        t.start()
    for t in takers:
        t.join()
    return [item for got in taken for item in got]
