# expect-fail: test_every_thread_joined
# Daemon consumers are never joined: run() polls the result list until every item is in, and leaves them waiting.
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
    import time

    buffer = BoundedBuffer(capacity)
    results = []
    lock = threading.Lock()

    def consume():
        while True:
            item = buffer.get()
            with lock:
                results.append(item)

    for _ in range(consumers):
        threading.Thread(target=consume, daemon=True).start()
    makers = [threading.Thread(target=lambda p=p: [buffer.put((p, k)) for k in range(items)]) for p in range(producers)]
    for t in makers:
        t.start()
    for t in makers:
        t.join()
    while True:
        with lock:
            if len(results) == producers * items:
                return list(results)
        time.sleep(0.01)
