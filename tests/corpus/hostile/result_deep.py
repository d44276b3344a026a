# hostile: result.json is a list nested 100,000 deep (json.loads would recurse until RecursionError)
# expect-message: the sandbox refused it
# (the audit hook refuses deleting or replacing the grader's result file, and the run is flagged; were it
# to get through, the reader refuses a list nested 100,000 deep: tests/test_readback.py proves that wall on its own)
import os

_replace = os.replace


def _swap_result(path):
    with open(path, "w") as handle:
        handle.write("[" * 100_000 + "]" * 100_000)


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
