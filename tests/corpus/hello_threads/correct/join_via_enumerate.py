import random
import threading
import time


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    for i in range(count):
        threading.Thread(target=hello, args=(i, random.randint(1, 3) if delay is None else delay)).start()
    for t in threading.enumerate():
        if t is not threading.current_thread():
            t.join()
    print("Done!")
