"""Forgery (own 4): multiprocessing.Process replaced, in sys.modules, by a thread class posing as a process.

A fake module object takes the place of ``multiprocessing`` so that the name ``Process`` gives threads
that report a pid of their own. Must not pass: the checks of child processes (no full marks; integrity
flag naming sys.modules).
"""

import sys
import threading
import time
import types

_fake = types.ModuleType("multiprocessing")


class _ThreadProcess(threading.Thread):
    _next = 90000

    def start(self):
        type(self)._next += 1
        self.pid = type(self)._next
        self.exitcode = 0
        super().start()


_fake.Process = _ThreadProcess
sys.modules["multiprocessing"] = _fake
from multiprocessing import Process  # noqa: E402 - the fake one


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    import random

    children = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        child = Process(target=hello, args=(i, d))
        children.append(child)
        child.start()
    for child in children:
        child.join()
    print("Done!")
