# expect-fail: test_run_defaults_and_parameter_order test_run_returns_each_item_once
# run() takes consumers before producers: run(consumers, producers, items, capacity).
import threading
from collections import deque

SENTINEL = None


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = deque()
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)
        self.not_empty = threading.Condition(self.lock)

    def put(self, item):
        with self.not_full:
            while len(self.items) >= self.capacity:
                self.not_full.wait()
            self.items.append(item)
            self.not_empty.notify()

    def get(self):
        with self.not_empty:
            while not self.items:
                self.not_empty.wait()
            item = self.items.popleft()
            self.not_full.notify()
            return item


def _produce(buffer, p, items):
    for k in range(items):
        buffer.put((p, k))


def _consume(buffer, taken, taken_lock):
    while True:
        item = buffer.get()
        if item is SENTINEL:
            return
        with taken_lock:
            taken.append(item)


def run(consumers=2, producers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    taken = []
    taken_lock = threading.Lock()
    making = [threading.Thread(target=_produce, args=(buffer, p, items)) for p in range(producers)]
    taking = [threading.Thread(target=_consume, args=(buffer, taken, taken_lock)) for _ in range(consumers)]
    for thread in making + taking:
        thread.start()
    for thread in making:
        thread.join()
    for _ in taking:
        buffer.put(SENTINEL)
    for thread in taking:
        thread.join()
    return taken


if __name__ == "__main__":
    print(sorted(run()))
