# Each child waits for a signal from the parent that never comes: main hangs in join().
import time
from multiprocessing import Event, Process


def hello(n, delay, go=None):
    if go is not None:
        go.wait()
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    go = Event()
    ps = [Process(target=hello, args=(i, 1 if delay is None else delay, go)) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    go.set()
    print("Done!")


if __name__ == "__main__":
    main()
