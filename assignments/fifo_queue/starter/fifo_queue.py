"""FIFO queue: a producer and a consumer process linked by a multiprocessing.Queue (see README.md)."""

from multiprocessing import Process, Queue  # noqa: F401

SENTINEL = None


def producer(queue, items):
    """Put every item of `items` on `queue`, in order, then put SENTINEL."""
    raise NotImplementedError("write producer(queue, items)")


def consumer(queue, results):
    """Take items off `queue` until SENTINEL; put each on `results`, in order; then put SENTINEL on `results`."""
    raise NotImplementedError("write consumer(queue, results)")


def run_pipeline(items):
    """Run producer and consumer in two processes linked by a Queue; return the forwarded items, in order."""
    raise NotImplementedError("write run_pipeline(items)")


if __name__ == "__main__":
    print(run_pipeline([3, "two", 1.0, (4, 5)]))
