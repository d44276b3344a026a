# Threads get their arguments by keyword, and the random delay is drawn with an explicit `is None` test.
import random
import threading
import time


def hello(n, delay):
    time.sleep(delay)
    print("[%d] Hello!" % n)


def main(count=10, delay=None):
    workers = []
    for number in range(count):
        if delay is None:
            wait = random.randint(1, 3)
        else:
            wait = delay
        workers.append(threading.Thread(target=hello, kwargs={"n": number, "delay": wait}))
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("Done!")


if __name__ == "__main__":
    main()
