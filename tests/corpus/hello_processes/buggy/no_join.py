# expect-fail: test_all_joined_before_done test_output_lines
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    for i in range(count):
        Process(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))).start()
    print("Done!")
