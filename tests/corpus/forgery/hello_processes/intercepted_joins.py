"""Forgery (stream 2): children run one after another; the parent intercepts its own evidence and reorders it.

Around its start()/join() loop the parent points the probes' evidence descriptor (found by number with
os.fstat) at a pipe of its own with os.dup2, so the probes' mp_start and mp_join events land there, with
their true numbers. It then gives those same numbers to the same events in a new order (every start
first, then every join), moves the start times together, and sends them on through the real descriptor:
every number once, in time order, from the parent itself. Must not pass:
test_children_run_concurrently (no full marks; integrity flag: the kernel saw each child end before
the next began, while the evidence has them all running together).
"""

import json
import os
import socket
import stat
import time
from multiprocessing import Process


def _named(fd):
    """Whether socket ``fd`` is connected to a path (the evidence stream's; not an unnamed socket pair)."""
    sock = socket.socket(fileno=os.dup(fd))
    try:
        return bool(sock.getpeername())
    except OSError:
        return False
    finally:
        sock.close()


def _evidence_fd():
    for fd in range(3, 256):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode) and _named(fd):
                return fd
        except OSError:
            continue
    return None


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def _intercepted(fd, body):
    """Run body() with the probes writing into a pipe; return the events they wrote."""
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    saved = os.dup(fd)
    os.dup2(write_end, fd)
    chunks = []
    try:
        body(lambda: chunks.append(_drain(read_end)))
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(write_end)
    chunks.append(_drain(read_end))
    os.close(read_end)
    return [json.loads(line) for line in b"".join(chunks).splitlines() if line.strip()]


def _drain(fd):
    data = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def main(count=10, delay=None):
    delay = 1 if delay is None else delay
    fd = _evidence_fd()
    children = [Process(target=hello, args=(i, delay)) for i in range(count)]

    def sequential(drain):
        for child in children:
            child.start()
            child.join()
            drain()

    if fd is None:
        sequential(lambda: None)
        print("Done!")
        return
    caught = _intercepted(fd, sequential)
    numbers = sorted(e["seq"] for e in caught)
    starts = [e for e in caught if e["ev"] == "mp_start"]
    joins = [e for e in caught if e["ev"] != "mp_start"]
    first = min(e["t"] for e in caught)
    for i, event in enumerate(starts):
        event["t"] = first + 0.001 * i
    last_start = starts[-1]["t"] if starts else first
    for event in joins:
        event["since"] = last_start + 0.002
        event["t"] = max(event["t"], last_start + 0.003)
    for number, event in zip(numbers, starts + sorted(joins, key=lambda e: e["t"])):
        event["seq"] = number
        os.write(fd, (json.dumps(event) + "\n").encode())
    print("Done!")


if __name__ == "__main__":
    main()
