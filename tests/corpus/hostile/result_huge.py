# hostile: a 64 MiB result.json of 21 million empty objects (within the sandbox's 64 MiB file limit)
# expect-message: the limit is 32.0 MiB
import os

_replace = os.replace


def _swap_result(path):
    with open(path, "w") as handle:  # 64 MiB less a little: RLIMIT_FSIZE is 64 MiB
        handle.write('{"call": {"ok": true, "value": 0, "pad": [')
        chunk = "{}," * (1024 * 1024 // 3)
        for _ in range(63):
            handle.write(chunk)
        handle.write("{}]}}")


def _arm():
    def replace(src, dst, *args, **kwargs):
        if str(dst).endswith("result.json"):  # the runner's last write: swap in the attack instead
            os.unlink(src)
            _swap_result(dst)
            return None
        return _replace(src, dst, *args, **kwargs)

    os.replace = replace


def answer():
    _arm()
    return 0


def squares(n):
    _arm()
    return []
