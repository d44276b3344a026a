"""Threads built with keyword arguments, started and joined by helper functions."""
import random
import sys
import threading as th
from time import sleep


def hello(n, delay):
    sleep(delay)
    sys.stdout.write("[{}] Hello!\n".format(n))


def pick_delay(delay):
    if delay is None:
        return random.randint(1, 3)
    return delay


def start_all(threads):
    for t in threads:
        t.start()


def join_all(threads):
    for t in threads:
        t.join()


def main(count=10, delay=None):
    threads = [th.Thread(target=hello, kwargs={"n": i, "delay": pick_delay(delay)}, daemon=True) for i in range(count)]
    start_all(threads)
    join_all(threads)
    print("Done!")


if __name__ == "__main__":
    main()
