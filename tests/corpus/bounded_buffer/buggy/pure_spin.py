# expect-fail: test_blocked_threads_wait_not_spin test_storage_used_under_one_lock
# Spins on the length without the lock, then takes the lock to change the list.
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.lock = threading.Lock()

    def put(self, item):
        while True:
            while len(self.items) >= self.capacity:
                pass
            with self.lock:
                if len(self.items) < self.capacity:
                    self.items.append(item)
                    return

    def get(self):
        while True:
            while not self.items:
                pass
            with self.lock:
                if self.items:
                    return self.items.pop(0)


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
