"""Drivers for hello_processes: they run inside the sandbox, next to the student's module."""

import multiprocessing
import random
import time

WAIT = 6.0


def main_then_wait(student, count, delay):
    """Call main(count, delay), then wait for any child process it left running.

    The wait polls is_alive() instead of calling join(), which the grader records as
    the student's join: a program that forgets join() still has its children print
    their greetings before it ends, so the checks of what the children did see all
    of it on every run, however loaded the machine. Only the join check judges joins.
    """
    before = set(multiprocessing.active_children())
    student.main(count, delay)
    _wait_for_children(before)


def main_with_defaults(student, seed):
    """Seed Python's random generator, call main() with its default arguments, wait for its children.

    The seed makes the random.randint(1, 3) draws of the parent the same on every
    run, so a check can tell random delays from a fixed one without luck.
    """
    before = set(multiprocessing.active_children())
    random.seed(seed)
    student.main()
    _wait_for_children(before)


def _wait_for_children(before):
    deadline = time.monotonic() + WAIT
    for child in multiprocessing.active_children():
        if child in before:
            continue
        while child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
