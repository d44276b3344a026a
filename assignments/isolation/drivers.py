"""Drivers for isolation: they run inside the sandbox, next to the student's module."""


def increment_twice(student, first, second):
    """The module's counter before, after increment(first), and after increment(second)."""
    seen = [student.counter]
    student.increment(first)
    seen.append(student.counter)
    student.increment(second)
    seen.append(student.counter)
    return seen


def run_in_thread_twice(student, times):
    """What run_in_thread(times) returns twice in a row, then the counter as this process sees it."""
    first = student.run_in_thread(times)
    second = student.run_in_thread(times)
    return [first, second, student.counter]


def run_in_process_then_counter(student, times):
    """What run_in_process(times) returns, then the counter as this process sees it."""
    returned = student.run_in_process(times)
    return [returned, student.counter]
