# hostile: returns a 40 MiB string, so the runner itself writes a 40 MiB result.json (no tampering needed)
# expect-message: the limit is 32.0 MiB


def answer():
    return "x" * (40 * 1024 * 1024)


def squares(n):
    return ["y" * 1024] * (40 * 1024)
