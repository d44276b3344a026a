# hostile: sleeps ten minutes at import
# expect-message: did not finish within
import time

time.sleep(600)


def answer():
    return 42


def squares(n):
    return [i * i for i in range(n)]
