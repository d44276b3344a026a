"""Hello, processes: ten children greet, the parent waits for all of them."""

import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    children = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        child = Process(target=hello, args=(i, d))
        child.start()
        children.append(child)
    for child in children:
        child.join()
    print("Done!")


if __name__ == "__main__":
    main()
