# expect-fail: test_put_and_get_alone_keep_fifo_and_wait test_never_more_than_capacity test_every_thread_joined
# expect-timeout: test_run_returns_each_item_once test_run_defaults_and_parameter_order test_every_thread_joined
# expect-deadlock: test_run_returns_each_item_once test_run_defaults_and_parameter_order test_every_thread_joined
# expect-only-these
# `if` instead of `while` around wait(): a thread woken while the buffer is still full (or empty again) goes on.
# In run(2, 3, 10, 1), a consumer woken after another took the item pops from an empty list and dies; with two
# consumers gone, the last sentinel is never taken. It got stuck only on most runs before the small run held woken
# threads back (the `late_wakeups` probe); now on every run.
import threading


class BoundedBuffer:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = []
        self.cond = threading.Condition()

    def put(self, item):
        with self.cond:
            if len(self.items) >= self.capacity:
                self.cond.wait()
            self.items.append(item)
            self.cond.notify_all()

    def get(self):
        with self.cond:
            if not self.items:
                self.cond.wait()
            item = self.items.pop(0)
            self.cond.notify_all()
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
