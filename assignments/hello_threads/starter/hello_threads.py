"""Hello, threads: greet from threads (see README.md)."""

import random  # noqa: F401 - you will need it for the random delay
import time  # noqa: F401
from threading import Thread  # noqa: F401


def hello(n, delay):
    """Sleep `delay` seconds, then print "[n] Hello!"."""
    raise NotImplementedError("write hello(n, delay)")


def main(count=10, delay=None):
    """Start `count` threads running hello(i, d), join them all, then print "Done!"."""
    raise NotImplementedError("write main(count, delay)")


if __name__ == "__main__":
    main()
