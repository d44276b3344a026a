# hostile: markup and terminal escapes in output, exception messages and return values
# expect-message: ValueError
import sys

EVIL = "<script>alert('x')</script><img src=x onerror=alert(1)>\x1b[2J\x1b[31mRED\x1b]0;pwned\x07\r\x08"


def answer():
    print(EVIL)
    sys.stderr.write(EVIL + "\n")
    raise ValueError(EVIL)


def squares(n):
    print(EVIL)
    return EVIL
