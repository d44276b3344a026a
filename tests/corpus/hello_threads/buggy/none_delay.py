# expect-fail: test_random_delay_by_default
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, delay)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("Done!")
