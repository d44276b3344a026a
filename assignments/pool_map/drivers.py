"""Drivers of the pool_map checks: run inside the sandbox, next to the student's pool_map.py.

The grader passes its own task function to the student's ``parallel_map``:
``probe_pools.task`` (returns ``3 * x + 1``) is module-level in the sandbox's
``grader_inside`` package, so spawn workers import it, and it records in which
process and when each item ran. ``probe_pools.arrange`` sets how the tasks
behave for the next call (see grader/inside/probe_pools.py).
"""

from types import ModuleType
from typing import Any

from grader_inside import probe_pools


def squares(student: ModuleType, xs: list[Any]) -> list[Any]:
    """square(x) for each x."""
    return [student.square(x) for x in xs]


def map_task(
    student: ModuleType,
    items: list[int],
    workers: int | None,
    meet: int = 2,
    hold_first: bool = True,
    handed_out: bool = False,
) -> Any:
    """parallel_map(task, items, workers=workers), tasks meeting in two workers, items[0] finishing last.

    ``workers=None`` calls parallel_map(task, items), with its default number of workers. ``handed_out``: a
    process executor that starts its workers as it needs them starts as many as it may, on every run.
    """
    probe_pools.arrange(items, meet=meet, hold_first=hold_first, handed_out=handed_out)
    if workers is None:
        return student.parallel_map(probe_pools.task, items)
    return student.parallel_map(probe_pools.task, items, workers=workers)


def map_failing(student: ModuleType, items: list[int], fail: list[int], workers: int) -> Any:
    """parallel_map(task, items, workers=workers) where the task raises ValueError for the items in `fail`."""
    probe_pools.arrange(items, fail=fail)
    return student.parallel_map(probe_pools.task, items, workers=workers)


def sums_of_squares(student: ModuleType, calls: list[list[Any]]) -> list[Any]:
    """sum_of_squares(n, workers) for each [n, workers] of ``calls``, marking where each call starts and ends.

    ``workers=None`` calls sum_of_squares(n), with its default number of workers.
    """
    results = []
    for n, workers in calls:
        probe_pools.mark(f"n={n}")
        results.append(student.sum_of_squares(n) if workers is None else student.sum_of_squares(n, workers))
    probe_pools.mark("end")
    return results
