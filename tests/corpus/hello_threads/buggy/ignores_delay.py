# expect-fail: test_each_thread_runs_hello_with_its_number_and_delay
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, random.randint(1, 3))) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("Done!")
