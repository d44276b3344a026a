# expect-fail: test_no_side_effects_at_import
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, 1 if delay is None else delay)) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")


main(count=2, delay=0)
