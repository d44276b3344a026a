# expect-fail: test_run_returns_each_item_once test_every_thread_joined test_run_defaults_and_parameter_order
# expect-timeout: test_run_returns_each_item_once test_every_thread_joined test_run_defaults_and_parameter_order
# expect-only-these
# One sentinel for all the consumers: the first one to see it stops, the others wait for ever.
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
    results = []

    def consume():
        while (item := buffer.get()) is not None:
            results.append(item)

    makers = [threading.Thread(target=lambda p=p: [buffer.put((p, k)) for k in range(items)]) for p in range(producers)]
    takers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in makers + takers:
        t.start()
    for t in makers:
        t.join()
    buffer.put(None)
    for t in takers:
        t.join()
    return results
