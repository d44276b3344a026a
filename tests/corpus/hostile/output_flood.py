# hostile: output flood: hundreds of megabytes on stdout and stderr, one endless line too
import sys


def answer():
    line = "flood " * 200 + "\n"
    for _ in range(300_000):
        sys.stdout.write(line)
        sys.stderr.write(line)
    return 0


def squares(n):
    while True:
        sys.stdout.write("x" * 1_000_000)
