# expect-fail: test_wakes_a_thread_that_can_go_on test_run_returns_each_item_once test_every_thread_joined
# expect-fail: test_run_defaults_and_parameter_order
# expect-timeout: test_run_returns_each_item_once test_every_thread_joined test_run_defaults_and_parameter_order
# expect-only-these
# One Condition for producers and consumers, woken with notify(): it may wake a thread of the wrong kind, and
# with two producers and two consumers every thread can end up waiting. run(3, 2, 25, 2) deadlocks on some runs
# only; run(2, 3, 10, 1), its woken threads held back until the others ran, on every run.
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
            self.cond.notify()

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            item = self.items.popleft()
            self.cond.notify()
            return item


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
