# Condition.wait_for with predicates; consumers stop by a shared count of items taken, no sentinel.
import threading
from collections import deque


class BoundedBuffer:
    def __init__(self, capacity):
        self._capacity = capacity
        self._items = deque()
        self._changed = threading.Condition(threading.RLock())

    def put(self, item):
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) < self._capacity)
            self._items.append(item)
            self._changed.notify_all()

    def get(self):
        with self._changed:
            self._changed.wait_for(lambda: len(self._items) > 0)
            item = self._items.popleft()
            self._changed.notify_all()
            return item


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    total = producers * items
    taken = []
    count_lock = threading.Lock()
    claimed = [0]

    def take():
        while True:
            with count_lock:
                if claimed[0] == total:
                    return
                claimed[0] += 1
            item = buffer.get()
            with count_lock:
                taken.append(item)

    threads = [threading.Thread(target=lambda p=p: [buffer.put((p, k)) for k in range(items)]) for p in range(producers)]
    threads += [threading.Thread(target=take) for _ in range(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return taken
