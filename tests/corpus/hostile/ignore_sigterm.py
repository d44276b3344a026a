# hostile: ignores SIGTERM (and SIGINT, SIGHUP) with children that ignore them too, then sleeps forever
import os
import signal
import time


def _stubborn():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
        signal.signal(sig, signal.SIG_IGN)
    for _ in range(3):
        if os.fork() == 0:
            while True:
                time.sleep(1)
    while True:
        time.sleep(1)


def answer():
    _stubborn()


def squares(n):
    _stubborn()
