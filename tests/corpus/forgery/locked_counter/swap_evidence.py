"""Forgery (b): no lock; after the joins run() rewrites the evidence file and swaps it in with os.replace.

Every recorded access gets the shared lock's key in its lockset; the probes keep writing to the
unlinked old file. Must not pass: test_every_access_under_one_shared_lock (no full marks; integrity flag:
the sandbox refused os.replace on its output folder, or the evidence file was replaced).
"""

import json
import os
from multiprocessing import Lock, Process, Value


def increment(counter, lock, times):
    for _ in range(times):
        counter.value += 1


def _launder(key):
    out = os.environ.get("GRADER_SANDBOX_OUT")
    if not out:
        return
    path = os.path.join(out, "evidence.jsonl")
    try:
        with open(path, encoding="ascii") as handle:
            lines = handle.read().splitlines()
        fixed = []
        for line in lines:
            event = json.loads(line)
            if event.get("ev") in ("lk_access", "lk_summary") and not event.get("locks"):
                event["locks"] = [key]
            fixed.append(json.dumps(event))
        with open(path + ".new", "w", encoding="ascii") as handle:
            handle.write("\n".join(fixed) + "\n")
        os.replace(path + ".new", path)
    except (OSError, ValueError):
        pass


def run(workers=4, times=1000):
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=increment, args=(counter, lock, times)) for _ in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    _launder(getattr(lock, "_semlock").name)
    return counter.value
