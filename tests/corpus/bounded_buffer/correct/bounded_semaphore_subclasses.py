# Thread subclasses for producers and consumers, a BoundedSemaphore of free slots, sentinel objects.
import threading
from collections import deque

_DONE = object()


class BoundedBuffer:
    def __init__(self, capacity):
        self.slots = threading.BoundedSemaphore(capacity)
        self.ready = threading.Semaphore(0)
        self.guard = threading.RLock()
        self.queue = deque()

    def put(self, item):
        self.slots.acquire()
        self.guard.acquire()
        try:
            self.queue.append(item)
        finally:
            self.guard.release()
        self.ready.release()

    def get(self):
        self.ready.acquire()
        with self.guard:
            item = self.queue.popleft()
        self.slots.release()
        return item


class Producer(threading.Thread):
    def __init__(self, buffer, number, count):
        super().__init__(name=f"producer-{number}")
        self.buffer, self.number, self.count = buffer, number, count

    def run(self):
        for k in range(self.count):
            self.buffer.put((self.number, k))


class Consumer(threading.Thread):
    def __init__(self, buffer):
        super().__init__()
        self.buffer = buffer
        self.got = []

    def run(self):
        while (item := self.buffer.get()) is not _DONE:
            self.got.append(item)


def run(producers=2, consumers=2, items=100, capacity=4):
    buffer = BoundedBuffer(capacity)
    makers = [Producer(buffer, p, items) for p in range(producers)]
    takers = [Consumer(buffer) for _ in range(consumers)]
    for thread in makers + takers:
        thread.start()
    for thread in makers:
        thread.join()
    for _ in takers:
        buffer.put(_DONE)
    for thread in takers:
        thread.join()
    return [item for taker in takers for item in taker.got]
