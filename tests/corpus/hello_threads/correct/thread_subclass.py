import random
import threading
import time


def hello(n, delay):
    time.sleep(delay)
    print("[%d] Hello!" % n)


class Greeter(threading.Thread):
    def __init__(self, n, delay):
        super().__init__(name=f"greeter-{n}")
        self.n = n
        self.delay = delay

    def run(self):
        hello(self.n, self.delay)


def main(count=10, delay=None):
    greeters = [Greeter(i, random.randint(1, 3) if delay is None else delay) for i in range(count)]
    for g in greeters:
        g.start()
    for g in reversed(greeters):
        g.join()
    print("Done!")


if __name__ == "__main__":
    main()
