# expect-fail: test_each_child_runs_hello_with_its_number_and_delay
# Every child sleeps random.randint(1, 3) seconds, whatever delay main() was given.
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    processes = []
    for i in range(count):
        p = Process(target=hello, args=(i, random.randint(1, 3)))
        processes.append(p)
        p.start()
    for p in processes:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
