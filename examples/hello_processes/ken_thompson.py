# Sleeps a fixed second whatever delay it is given.
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(1)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, delay)) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
