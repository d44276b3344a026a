# expect-fail: test_each_hello_in_own_child_process
import random
import threading
import time


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    ts = [threading.Thread(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("Done!")
