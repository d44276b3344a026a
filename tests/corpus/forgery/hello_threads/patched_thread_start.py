"""Forgery (own 5): no threads at all; threading.Thread.start is patched to run the target at once.

The probe's start wrapper is kept (so th_start is still recorded) but the real start is bypassed: each
hello runs sequentially in the caller. Must not pass: the checks that greetings run concurrently in
threads (no full marks; integrity flag: threading.Thread attribute replaced, refused by the sandbox).
"""

import random
import threading
import time
from threading import Thread


def _inline_start(self):
    self._target(*self._args)


try:
    threading.Thread.start = _inline_start
except Exception:  # the sandbox may refuse: then the threads are real
    pass


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        t = Thread(target=hello, args=(i, d))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    print("Done!")
