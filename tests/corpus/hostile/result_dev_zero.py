# hostile: leaves result.json as a symbolic link to /dev/zero: a reader that follows it reads without end
# expect-message: the sandbox refused it
# (the audit hook refuses deleting or replacing the grader's result file, and the run is flagged; were it
# to get through, the reader refuses a symbolic link to /dev/zero: tests/test_readback.py proves that wall on its own)
import os

_replace = os.replace


def _swap_result(path):
    os.symlink("/dev/zero", path)


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
