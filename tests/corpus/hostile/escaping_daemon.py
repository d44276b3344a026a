# hostile: escaping daemon: setsid and a double fork, then the grandchild runs forever
import os
import time


def _daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.chdir("/")
            for fd in range(3):
                os.close(fd)
            while True:
                time.sleep(0.1)
        os._exit(0)


def answer():
    _daemon()
    time.sleep(0.3)
    return 41


def squares(n):
    _daemon()
    return [i for i in range(n)]
