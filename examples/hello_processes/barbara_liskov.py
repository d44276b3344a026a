# Calls hello directly: every greeting comes from the parent process.
import random
import time
from multiprocessing import Process  # noqa: F401  (imported, never used)


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    for i in range(count):
        hello(i, delay if delay is not None else random.randint(1, 3))
    print("Done!")


if __name__ == "__main__":
    main()
