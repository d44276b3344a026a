"""Drivers for hello_threads: they run inside the sandbox, next to the student's module."""

import random
import threading
import time

WAIT = 6.0


def _wait_for_threads(before):
    """Wait (without join(), which the grader records as the student's) for threads main() left running.

    A program that forgets join() still prints every greeting before it ends, so the
    checks of what the threads did see all of it, on every run, however loaded the machine.
    """
    deadline = time.monotonic() + WAIT
    for thread in threading.enumerate():
        if thread in before or thread is threading.current_thread():
            continue
        while thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)


def main_then_wait(student, count, delay):
    """Call main(count, delay), then wait for any thread it left running."""
    before = set(threading.enumerate())
    student.main(count=count, delay=delay)
    _wait_for_threads(before)


def mains_then_wait(student, calls):
    """Call main(count, delay) for each [count, delay] of ``calls`` in turn, waiting for its threads after each."""
    for count, delay in calls:
        before = set(threading.enumerate())
        student.main(count, delay)
        _wait_for_threads(before)


def main_with_defaults(student, seed):
    """Seed Python's random generator, call main() with its default arguments, wait for its threads.

    The seed makes the delays random.randint(1, 3) draws the same on every run,
    so a check can tell random delays from a fixed one without luck.
    """
    before = set(threading.enumerate())
    random.seed(seed)
    student.main()
    _wait_for_threads(before)
