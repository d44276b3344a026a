# expect-fail: test_output_lines test_no_side_effects_at_import
import time
from multiprocessing import Process


def hello(n, delay)
    time.sleep(delay)
    print(f"[{n}] Hello!")
