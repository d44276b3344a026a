# expect-fail: test_all_joined_before_done test_works_under_spawn
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")
    raise SystemExit(3)


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, 1 if delay is None else delay)) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")
