# Consumers run the whole time; the producers run one after another, each joined before the next starts:
# every producer is a thread of its own, but a later one may get the thread ident of an earlier one.
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
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
            item = self.items.pop(0)
            self.not_full.notify()
            return item


STOP = object()


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    sink, sink_lock = [], threading.Lock()

    def consume():
        while True:
            item = buffer.get()
            if item is STOP:
                return
            with sink_lock:
                sink.append(item)

    def produce(p):
        for k in range(items):
            buffer.put((p, k))

    takers = [threading.Thread(target=consume) for _ in range(consumers)]
    for t in takers:
        t.start()
    for p in range(producers):
        maker = threading.Thread(target=produce, args=(p,))
        maker.start()
        maker.join()
    for _ in takers:
        buffer.put(STOP)
    for t in takers:
        t.join()
    return sink
