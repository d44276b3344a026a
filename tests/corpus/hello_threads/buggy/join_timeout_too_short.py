# expect-fail: test_all_joined_before_done
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=0.01)
    print("Done!")
