# hostile: os._exit at import
# expect-message: exit status 3
import os

os._exit(3)


def answer():
    return 42


def squares(n):
    return [i * i for i in range(n)]
