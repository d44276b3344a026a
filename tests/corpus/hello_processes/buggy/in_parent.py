# expect-fail: test_each_hello_in_own_child_process
import random
import time


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    for i in range(count):
        hello(i, delay if delay is not None else random.randint(1, 3))
    print("Done!")
