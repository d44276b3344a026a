# expect-fail: test_random_delay_by_default
# With delay=None every child sleeps a fixed 2 seconds instead of its own random.randint(1, 3).
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    d = 2 if delay is None else delay
    processes = [Process(target=hello, args=(i, d)) for i in range(count)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
