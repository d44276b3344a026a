"""Forgery (d): greetings from threads disguised as processes, touching no grader module.

A Process subclass whose _Popen starts a thread under an invented pid (and reports exit code 0), plus
an os.getpid patched per thread so that each "child" prints and reports its invented pid.
Must not pass: the checks of child processes (no full marks; integrity flags: os.getpid replaced,
_Popen used, a "process" that never started the probes).
"""

import itertools
import os
import threading
import time
from multiprocessing import Process

_real_getpid = os.getpid
_fake_pids = itertools.count(_real_getpid() + 5000)
_local = threading.local()


def _getpid():
    return getattr(_local, "pid", None) or _real_getpid()


os.getpid = _getpid


class _ThreadPopen:
    def __init__(self, process):
        self.pid = next(_fake_pids)
        self.returncode = None
        self.sentinel = None

        def body():
            _local.pid = self.pid
            process.run()
            self.returncode = 0

        self.thread = threading.Thread(target=body, daemon=True)
        self.thread.start()

    def poll(self, flag=os.WNOHANG):
        return self.returncode

    def wait(self, timeout=None):
        self.thread.join(timeout)
        return self.returncode

    def terminate(self):
        pass

    def kill(self):
        pass

    def close(self):
        pass


class Child(Process):
    @staticmethod
    def _Popen(process_obj):
        return _ThreadPopen(process_obj)


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    import random

    children = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        child = Child(target=hello, args=(i, d))
        children.append(child)
        child.start()
    for child in children:
        child.join()
    print("Done!")
