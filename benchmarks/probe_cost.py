"""What the lockset probe and the guard cost per ``counter.value += 1`` under a lock, in one interpreter.

    python benchmarks/probe_cost.py [--increments 4000] [--repeat 5]

Each row runs in a fresh interpreter (an audit hook cannot be removed): ``bare`` with nothing installed,
``probe`` with the lockset probe (``grader/inside/probe_locks.py``, without the ``race`` probe's sleeps, which
cost wall time rather than CPU), ``probe and guard`` with the guard's audit hook (``grader/inside/guard.py``)
installed first, as in every process of a sandbox. The student's loop is a file of a work folder, as in a
sandbox, so the probe finds its line. Prints the least CPU time of ``--repeat`` loops, per loop and per
increment.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

STUDENT = """\
def increment(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1
"""

DRIVER = """\
import os, sys, time
work, mode, times, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, work)
from multiprocessing import Lock, Value
from grader.inside import guard, probe_locks, probes
if mode == "probe and guard":
    guard.install(work, os.path.dirname(probes.__file__), os.path.join(work, "out"), lambda *a, **k: None)
if mode != "bare":
    probe_locks.install({"work_dir": work})
import student
counter, lock = Value("i", 0), Lock()
student.increment(counter, lock, 100)
def loop():
    start = time.process_time()
    student.increment(counter, lock, times)
    return time.process_time() - start
print(min(loop() for _ in range(repeat)))
"""

MODES = ("bare", "probe", "probe and guard")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--increments", type=int, default=4000, help="increments per loop (default 4000)")
    parser.add_argument("--repeat", type=int, default=5, help="loops per row; the least is shown (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="probe-cost-") as tmp:
        work = Path(tmp)
        (work / "student.py").write_text(STUDENT)
        (work / "driver.py").write_text(DRIVER)
        print(f"| setting | CPU per {args.increments} increments | per increment |")
        print("| --- | --- | --- |")
        for mode in MODES:
            done = subprocess.run(
                [sys.executable, str(work / "driver.py"), str(work), mode, str(args.increments), str(args.repeat)],
                capture_output=True, text=True, check=True,
            )
            seconds = float(done.stdout.split()[-1])
            print(f"| {mode} | {seconds * 1000:.1f} ms | {seconds / args.increments * 1e6:.1f} µs |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
