import multiprocessing
import random
import time


def hello(n, delay):
    time.sleep(delay)
    print("[%d] Hello!" % n)


class Greeter(multiprocessing.Process):
    def __init__(self, n, delay):
        super().__init__()
        self.n = n
        self.delay = delay

    def run(self):
        hello(self.n, self.delay)


def main(count=10, delay=None):
    greeters = [Greeter(i, delay if delay is not None else random.randint(1, 3)) for i in range(count)]
    for g in greeters:
        g.start()
    for g in greeters:
        g.join()
    print("Done!")


if __name__ == "__main__":
    main()
