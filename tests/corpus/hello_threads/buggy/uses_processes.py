# expect-fail: test_each_hello_on_its_own_thread test_threads_run_concurrently test_all_joined_before_done
import random
import time
from multiprocessing import Process


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!", flush=True)


def main(count=10, delay=None):
    ps = [Process(target=hello, args=(i, delay if delay is not None else random.randint(1, 3))) for i in range(count)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("Done!")


if __name__ == "__main__":
    main()
