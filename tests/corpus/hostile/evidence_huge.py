# hostile: appends 63 MiB of well-formed evidence lines (21 million empty objects) to evidence.jsonl
# expect-message: the limit is 8.0 MiB
import os

LINE = '{"ev": "x", "pid": 1, "t": 0, "pad": [' + "{}," * 20_000 + "{}]}\n"


def _flood():
    path = os.path.join(os.environ.get("GRADER_SANDBOX_OUT", "."), "evidence.jsonl")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        data = (LINE * 64).encode()
        for _ in range(63 * 1024 * 1024 // len(data)):
            os.write(fd, data)
    finally:
        os.close(fd)


def answer():
    _flood()
    return 0


def squares(n):
    _flood()
    return []
