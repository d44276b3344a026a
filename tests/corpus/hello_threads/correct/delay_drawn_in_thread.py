from random import randint
from threading import Thread
import time


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!", flush=True)


def worker(n, delay):
    hello(n, randint(1, 3) if delay is None else delay)


def main(count=10, delay=None):
    pool = {}
    for i in range(count):
        pool[i] = Thread(target=worker, args=(i, delay))
        pool[i].start()
    while pool:
        _, t = pool.popitem()
        t.join()
    print("Done!")


if __name__ == "__main__":
    main()
