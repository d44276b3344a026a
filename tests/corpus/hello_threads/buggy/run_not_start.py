# expect-fail: test_each_hello_on_its_own_thread test_threads_run_concurrently
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = [Thread(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for t in threads:
        t.run()
    print("Done!")
