# expect-fail: test_random_delay_by_default
# One random.randint(1, 3) is drawn before the loop, so every child sleeps the same time.
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    d = delay if delay is not None else random.randint(1, 3)
    processes = []
    for i in range(count):
        p = Process(target=hello, args=(i, d))
        processes.append(p)
        p.start()
    for p in processes:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
