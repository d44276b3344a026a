# expect-fail: test_hello_sleeps_for_delay
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(1)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("Done!")
