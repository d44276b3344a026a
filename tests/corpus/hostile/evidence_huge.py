# hostile: sends 63 MiB of well-formed evidence lines (21 million empty objects) as evidence
# (the sandbox refuses opening the evidence by its path, so it writes through the probes' own descriptor:
# the evidence stream's socket, or the evidence file where there is no stream)
# expect-message: the limit is 8.0 MiB
import os
import socket
import stat

LINE = '{"ev": "x", "pid": 1, "t": 0, "pad": [' + "{}," * 20_000 + "{}]}\n"


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
    import fcntl

    for fd in range(3, 64):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode) and _named(fd):
                return fd, True
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND and os.fstat(fd).st_size > 0:
                return fd, False
        except OSError:
            continue
    raise OSError("no evidence descriptor")


def _flood():
    fd, messages = _evidence_fd()
    data = LINE.encode() if messages else (LINE * 64).encode()
    for _ in range(63 * 1024 * 1024 // len(data)):
        os.write(fd, data)


def answer():
    _flood()
    return 0


def squares(n):
    _flood()
    return []
