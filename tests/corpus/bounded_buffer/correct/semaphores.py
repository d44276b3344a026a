# Two counting semaphores (free slots, filled slots) and a Lock around the deque; per-consumer lists.
import threading
from collections import deque

STOP = "stop"


class BoundedBuffer:
    def __init__(self, capacity):
        self.buf = deque()
        self.mutex = threading.Lock()
        self.free = threading.Semaphore(capacity)
        self.filled = threading.Semaphore(0)

    def put(self, item):
        self.free.acquire()
        with self.mutex:
            self.buf.append(item)
        self.filled.release()

    def get(self):
        self.filled.acquire()
        with self.mutex:
            item = self.buf.popleft()
        self.free.release()
        return item


def consumer(buffer, out):
    while True:
        item = buffer.get()
        if item == STOP:
            return
        out.append(item)


def producer(buffer, p, items):
    for k in range(items):
        buffer.put((p, k))


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    outs = [[] for _ in range(consumers)]
    prods = [threading.Thread(target=producer, args=(buffer, p, items)) for p in range(producers)]
    cons = [threading.Thread(target=consumer, args=(buffer, outs[c])) for c in range(consumers)]
    for t in cons:
        t.start()
    for t in prods:
        t.start()
    for t in prods:
        t.join()
    for _ in cons:
        buffer.put(STOP)
    for t in cons:
        t.join()
    return [item for out in outs for item in out]
