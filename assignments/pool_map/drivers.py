"""Drivers of the pool_map checks: run inside the sandbox, next to the student's pool_map.py.

The grader passes its own task function to the student's ``parallel_map``:
``probe_pools.task`` (returns ``3 * x + 1``) is module-level in the sandbox's
``grader_inside`` package, so spawn workers import it, and it records in which
process and when each item ran. ``probe_pools.arrange`` sets how the tasks
behave for the next call (see grader/inside/probe_pools.py).
"""

from grader_inside import probe_pools


def squares(student, xs):
    return [student.square(x) for x in xs]


def map_task(student, items, workers, meet=2, hold_first=True):
    """parallel_map(task, items, workers=workers), tasks meeting in two workers, items[0] finishing last."""
    probe_pools.arrange(items, meet=meet, hold_first=hold_first)
    return student.parallel_map(probe_pools.task, items, workers=workers)


def map_failing(student, items, fail, workers):
    """parallel_map(task, items, workers=workers) where the task raises ValueError for the items in `fail`."""
    probe_pools.arrange(items, fail=fail)
    return student.parallel_map(probe_pools.task, items, workers=workers)


def sums_of_squares(student, ns, workers):
    """sum_of_squares(n, workers=workers) for each n, marking where each call starts and ends."""
    results = []
    for n in ns:
        probe_pools.mark(f"n={n}")
        results.append(student.sum_of_squares(n, workers=workers))
    probe_pools.mark("end")
    return results
