# hostile: memory hog: the process and three forked children each take all the memory they can
import os
import time


def _hog():
    chunks = []
    try:
        while True:
            chunks.append(bytearray(64 * 1024 * 1024))
    except MemoryError:
        pass
    time.sleep(30)


def answer():
    for _ in range(3):
        if os.fork() == 0:
            _hog()
            os._exit(0)
    _hog()
    return 0


def squares(n):
    big = [bytearray(1024 * 1024 * 1024) for _ in range(8)]
    return [len(big)]
