"""Forgery (stream 4): the greetings come from children the evidence never hears of.

Before each os.fork the parent points the probes' evidence descriptor (found by number with os.fstat)
at /dev/null with os.dup2 and restores it right after, so the probes' record of the fork goes nowhere
in the parent and the child keeps writing its evidence to /dev/null: the child is invisible to the
evidence. It prints its greeting by descriptor and lingers (a "cool-down") before leaving. The parent
waits with os.waitpid. Must not pass: test_each_hello_in_own_child_process and the checks on children
(no full marks; integrity flag: the kernel saw Python processes the evidence never mentions).
"""

import os
import socket
import stat
import time


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


def _blind_fork(fd):
    if fd is None:
        return os.fork()
    null = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(fd)
    os.dup2(null, fd)
    pid = os.fork()
    if pid:
        os.dup2(saved, fd)
    os.close(saved)
    os.close(null)
    return pid


def main(count=10, delay=None):
    delay = 1 if delay is None else delay
    fd = _evidence_fd()
    pids = []
    for i in range(count):
        pid = _blind_fork(fd)
        if pid == 0:
            time.sleep(delay)
            os.write(1, f"[{i}] Hello!\n".encode())
            time.sleep(1.5)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    print("Done!")


if __name__ == "__main__":
    main()
