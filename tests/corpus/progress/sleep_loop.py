# The main thread holds a lock and sleeps 2 s in a loop while its worker thread waits for that lock
# without a time limit: only the sleeping thread makes progress, and it does.
import threading
import time


def worker(lock, out):
    with lock:
        out.append("done")


def main():
    lock, out = threading.Lock(), []
    with lock:
        thread = threading.Thread(target=worker, args=(lock, out))
        thread.start()
        for _ in range(2):
            time.sleep(2)
    thread.join()
    return out[0]
