# expect-fail: test_all_joined_before_done
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    for i in range(count):
        t = Thread(target=hello, args=(i, delay if delay is not None else random.randint(1, 3)))
        t.start()
    t.join()
    print("Done!")
