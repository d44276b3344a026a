"""Bounded buffer: producer and consumer threads share one fixed-size buffer (see README.md)."""

import threading  # noqa: F401
from collections import deque  # noqa: F401


class BoundedBuffer:
    """A FIFO buffer holding at most `capacity` items, safe for any number of threads."""

    def __init__(self, capacity):
        raise NotImplementedError("write BoundedBuffer.__init__(capacity)")

    def put(self, item):
        """Wait while the buffer is full, then append `item`."""
        raise NotImplementedError("write BoundedBuffer.put(item)")

    def get(self):
        """Wait while the buffer is empty, then remove and return the oldest item."""
        raise NotImplementedError("write BoundedBuffer.get()")


def run(producers=2, consumers=2, items=100, capacity=4):
    """Producer p puts (p, 0) ... (p, items-1); consumers take every item; return them all."""
    raise NotImplementedError("write run(producers, consumers, items, capacity)")


if __name__ == "__main__":
    print(sorted(run()))
