# expect-fail: test_all_joined_before_done
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, delay or random.randint(1, 3)), daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    time.sleep(0.05)
    print("Done!")
