# Wrong greeting format (angle brackets instead of square ones).
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"<{n}> Hello!")


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
