# hostile: invalid UTF-8 and lone surrogates in output, exception messages and return values
import os
import sys


def answer():
    sys.stdout.flush()
    os.write(1, b"bad \xff\xfe \xc3\x28 utf-8\n")
    os.write(2, b"\xed\xa0\x80 surrogate bytes on stderr\n")
    print("lone \udcff surrogate", flush=True)
    raise RuntimeError("message with \udcff and \x00 nul")


def squares(n):
    return "\udcff\ud800" * n
