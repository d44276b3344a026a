# expect-fail: test_random_delay_by_default
# main's default count is 3, not 10.
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=3, delay=None):
    processes = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        p = Process(target=hello, args=(i, d))
        processes.append(p)
        p.start()
    for p in processes:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
