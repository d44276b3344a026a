# expect-fail: test_threads_run_concurrently test_all_joined_before_done test_each_thread_runs_hello_with_its_number_and_delay
# main's parameters are in the wrong order (delay first): main(4, 0.5), as the signature main(count, delay) is
# called, asks for 0.5 threads.
import random
import time
from threading import Thread


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(delay=None, count=10):
    threads = []
    for i in range(count):
        d = delay if delay is not None else random.randint(1, 3)
        t = Thread(target=hello, args=(i, d))
        threads.append(t)
        t.start()
    for t in threads:
        t.join()
    print("Done!")


if __name__ == "__main__":
    main()
