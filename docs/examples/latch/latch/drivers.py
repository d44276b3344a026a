import sys
import threading
import time


def _blocked_or_busy(thread, patience):
    """Wait until ``thread`` sits in a threading wait, or ``patience`` seconds have passed (it never will)."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        if frame is not None and frame.f_code.co_filename == threading.__file__ and frame.f_code.co_name == "wait":
            return
        time.sleep(0.005)


def wait_then_open(student):
    """One thread waits on Latch(1); once it waits (or has had 2 s to), 0.5 s later count_down() opens it."""
    latch = student.Latch(1)
    returned = []
    waiter = threading.Thread(target=lambda: returned.append(latch.wait()))
    waiter.start()
    _blocked_or_busy(waiter, patience=2.0)
    time.sleep(0.5)
    latch.count_down()
    waiter.join(10)
    return returned


def many_threads(student, waiters=3, count=4, patience=5.0):
    """``waiters`` threads wait and ``count`` threads count down, all at once; what each wait() returned.

    A waiter still waiting after ``patience`` seconds in all is left behind (its thread is a daemon), so
    a latch that never opens is a short list of results, not a run that hangs.
    """
    latch = student.Latch(count)
    returned = []
    threads = [threading.Thread(target=lambda: returned.append(latch.wait()), daemon=True) for _ in range(waiters)]
    threads += [threading.Thread(target=latch.count_down, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + patience
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return returned
