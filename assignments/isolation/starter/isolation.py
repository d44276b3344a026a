"""Process vs. thread: who sees a change to a global variable? (see README.md)."""

import threading  # noqa: F401
from multiprocessing import Process  # noqa: F401

counter = 0


def increment(times):
    """Add 1 to the global `counter`, `times` times."""
    raise NotImplementedError("write increment(times)")


def run_in_thread(times):
    """Run increment(times) in a new threading.Thread, join it, return `counter`."""
    raise NotImplementedError("write run_in_thread(times)")


def run_in_process(times):
    """Run increment(times) in a new multiprocessing.Process, join it, return `counter`."""
    raise NotImplementedError("write run_in_process(times)")


if __name__ == "__main__":
    print("after a thread:", run_in_thread(1000))
    print("after a process:", run_in_process(1000))
