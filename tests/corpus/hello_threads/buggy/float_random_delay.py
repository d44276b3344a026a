# expect-fail: test_random_delay_by_default
# With delay=None each thread sleeps random.uniform(1, 3): not a whole number of seconds from random.randint(1, 3).
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    threads = []
    for i in range(count):
        d = delay if delay is not None else random.uniform(1, 3)
        t = Thread(target=hello, args=(i, d))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    print("Done!")


if __name__ == "__main__":
    main()
