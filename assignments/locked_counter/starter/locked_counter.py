"""Locked counter: worker processes add to one shared counter under one lock (see README.md)."""

from multiprocessing import Lock, Process, Value  # noqa: F401


def increment(counter, lock, times):
    """Add 1 to counter.value, `times` times, holding `lock` for every read-modify-write."""
    raise NotImplementedError("write increment(counter, lock, times)")


def run(workers=4, times=1000):
    """Start `workers` processes running increment on one Value and one Lock, join them, return the total."""
    raise NotImplementedError("write run(workers, times)")


if __name__ == "__main__":
    print(run())
