"""Forgery (stream 1): the parent prints every greeting itself and writes the children's evidence for them.

The children it starts only sleep and leave with os._exit(0), so each records one event (number 1, its
start) and never a last one. The parent writes the greetings to stdout by descriptor (os.write(1, ...),
which the probes' line recorder never sees) and, through the probes' own evidence descriptor found by
number (os.fstat: the one socket, or the one append-only file), one "out" event in each child's name,
numbered 2 right after the child's own 1: the numbering holds and no grader module is touched.
Must not pass: test_each_hello_in_own_child_process (no full marks; integrity flag: the kernel says
those events were sent by another process than the one they name).
"""

import json
import os
import socket
import stat
import threading
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
            mode = os.fstat(fd).st_mode
            if (stat.S_ISSOCK(mode) and _named(fd)) or (stat.S_ISREG(mode) and os.get_blocking(fd) and _appends(fd)):
                return fd
        except OSError:
            continue
    return None


def _appends(fd):
    import fcntl

    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def _quiet(delay):
    time.sleep(delay + 0.5)
    os._exit(0)


def hello(n, delay):
    time.sleep(delay)
    print(f"[{n}] Hello!")


def main(count=10, delay=None):
    delay = 0.2 if delay is None else delay
    children = [Process(target=_quiet, args=(delay,)) for _ in range(count)]
    for child in children:
        child.start()
    time.sleep(delay)
    fd = _evidence_fd()
    for i, child in enumerate(children):
        text = f"[{i}] Hello!\n"
        os.write(1, text.encode())
        if fd is not None:
            event = {"ev": "out", "pid": child.pid, "tid": threading.get_ident(), "t": time.monotonic(), "seq": 2,
                     "stream": "stdout", "text": text, "thread": "MainThread"}
            os.write(fd, (json.dumps(event) + "\n").encode())
    for child in children:
        child.join()
    print("Done!")


if __name__ == "__main__":
    main()
