# expect-fail: test_each_thread_runs_hello_with_its_number_and_delay
# `delay or random.randint(1, 3)` turns an explicit delay=0 into a random sleep of 1 to 3 seconds.
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = []
    for i in range(count):
        d = delay or random.randint(1, 3)
        t = Thread(target=hello, args=(i, d))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    print("Done!")


if __name__ == "__main__":
    main()
