# The child waits for an Event without a time limit; the parent calls join(timeout=0.5) in a loop and
# sets the Event only after four rounds (2 s).
from multiprocessing import Event, Process, Queue


def child(go, results):
    go.wait()
    results.put("done")


def main():
    go, results = Event(), Queue()
    proc = Process(target=child, args=(go, results))
    proc.start()
    rounds = 0
    while proc.is_alive() and rounds < 4:
        proc.join(timeout=0.5)
        rounds += 1
    go.set()
    item = results.get()
    proc.join()
    return item
