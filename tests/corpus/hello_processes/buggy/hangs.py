# expect-timeout: test_output_lines
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")
    while True:
        time.sleep(0.5)


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, 1 if delay is None else delay)) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")
