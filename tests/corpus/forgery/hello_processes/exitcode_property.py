"""Forgery (stream 3): children that fail, reported as ending with exit code 0.

Each child prints its greeting and then leaves with exit code 3. The children are made from a Process
subclass whose exitcode property says 0 once the child has ended: the probes' join() record reads the
property, so the evidence says "exit code 0". No grader module, private attribute or patched function is
touched. Must not pass: test_all_joined_before_done (no full marks; integrity flag: the kernel saw the
children end with exit code 3).
"""

import sys
import time
from multiprocessing import Process


class _Child(Process):
    @property
    def exitcode(self):
        code = super().exitcode
        return None if code is None else 0


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def _hello_then_fail(n, delay):
    hello(n, delay)
    sys.stdout.flush()
    sys.exit(3)


def main(count=10, delay=None):
    delay = 1 if delay is None else delay
    children = [_Child(target=_hello_then_fail, args=(i, delay)) for i in range(count)]
    for child in children:
        child.start()
    for child in children:
        child.join()
    print("Done!")


if __name__ == "__main__":
    main()
