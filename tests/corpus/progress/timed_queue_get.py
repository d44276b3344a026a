# The producer waits for an Event without a time limit; the parent polls the queue with
# get(timeout=0.5) and sets the Event only after four empty polls (2 s).
import queue
from multiprocessing import Event, Process, Queue


def producer(items, go):
    go.wait()
    items.put("done")


def main():
    items, go = Queue(), Event()
    child = Process(target=producer, args=(items, go))
    child.start()
    empty = 0
    while True:
        try:
            item = items.get(timeout=0.5)
            break
        except queue.Empty:
            empty += 1
            if empty == 4:
                go.set()
    child.join()
    return item
