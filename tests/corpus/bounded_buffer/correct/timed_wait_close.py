# wait(timeout) inside `while` as a safety net, notify on every change; a close() method stops the consumers.
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.closed = False
        self.lock = threading.Lock()
        self.not_full = threading.Condition(self.lock)
        self.not_empty = threading.Condition(self.lock)

    def put(self, item):
        with self.lock:
            while len(self.items) >= self.capacity:
                self.not_full.wait(timeout=0.5)
            self.items.append(item)
            self.not_empty.notify()

    def get(self):
        with self.lock:
            while not self.items and not self.closed:
                self.not_empty.wait(timeout=0.5)
            if not self.items:
                return None
            item = self.items.pop(0)
            self.not_full.notify()
            return item

    def close(self):
        with self.lock:
            self.closed = True
            self.not_empty.notify_all()


class Consumer(threading.Thread):
    def __init__(self, buffer, sink, sink_lock):
        super().__init__()
        self.buffer, self.sink, self.sink_lock = buffer, sink, sink_lock

    def run(self):
        while True:
            item = self.buffer.get()
            if item is None:
                return
            with self.sink_lock:
                self.sink.append(item)


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    sink, sink_lock = [], threading.Lock()
    makers = [threading.Thread(target=lambda p=p: [buffer.put((p, k)) for k in range(items)]) for p in range(producers)]
    takers = [Consumer(buffer, sink, sink_lock) for _ in range(consumers)]
    for t in takers + makers:
        t.start()
    for t in makers:
        t.join()
    buffer.close()
    for t in takers:
        t.join()
    return sink
