# A worker thread waits for an Event without a time limit; the main thread waits on a Condition with a
# timeout, four times, before it sets the Event: only the timed wait makes progress.
import threading


def worker(go, out):
    go.wait()
    out.append("done")


def main():
    go, out, cond = threading.Event(), [], threading.Condition()
    thread = threading.Thread(target=worker, args=(go, out))
    thread.start()
    rounds = 0
    with cond:
        while rounds < 4:
            cond.wait(timeout=0.5)
            rounds += 1
    go.set()
    thread.join()
    return out[0]
