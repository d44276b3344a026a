"""Drivers for hello_processes: they run inside the sandbox, next to the student's module."""

import multiprocessing
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
    student.main(count=count, delay=delay)
    deadline = time.monotonic() + WAIT
    for child in multiprocessing.active_children():
        if child in before:
            continue
        while child.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
