"""Forgery (own 6): greetings printed from the caller, with a profile hook that hides the caller's prints.

sys.setprofile installs a hook meant to swallow the probes' output recording while hello runs directly
(no thread). Must not pass: the checks of threads (no full marks; integrity flag: sys.setprofile, refused
by the sandbox).
"""

import sys
import time
from threading import Thread


def _quiet(frame, event, arg):
    return None


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    try:
        sys.setprofile(_quiet)
    except Exception:
        pass
    for i in range(count):
        hello(i, delay if delay is not None else 1)
    Thread(target=lambda: None).start()
    print("Done!")
