# expect-fail: test_each_hello_on_its_own_thread test_threads_run_concurrently
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def greet_all(count, delay):
    for i in range(count):
        hello(i, delay if delay is not None else random.randint(1, 3))


def main(count=10, delay=None):
    t = Thread(target=greet_all, args=(count, delay))
    t.start()
    t.join()
    print("Done!")
