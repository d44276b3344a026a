# A lambda as the target: fine under fork, cannot be pickled under spawn.
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    ps = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        ps.append(Process(target=lambda i=i, d=d: hello(i, d)))
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
