"""How long ``grader check`` of a reference takes, two checks at a time, in the checks' own order and longest first.

    python benchmarks/check_order.py                              # every bundled assignment, 3 runs each way
    python benchmarks/check_order.py --runs 5 hello_threads fifo_queue
    python benchmarks/check_order.py --markdown table.md

For each assignment, a first ``grader check ASSIGNMENT reference/FILE --check-workers 2`` runs the checks
in their own order and keeps each check's duration (:mod:`grader.grading.timings`). Then the reference is
graded ``--runs`` times in each order, in turn. Before each grading, the record of the gradings' durations
in the timings file is set so that :func:`grader.grading.timings.plan` picks the order wanted: for the
checks' own order, longest first recorded as slower; for longest first, not recorded yet. The command is
the one a student runs; its wall time and the CPU of its tree (``getrusage``) are reported, medians. Say
the machine's load: both orders run side by side in turn, so a drift reaches both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.grading import timings
from grader.model.assignment import bundled_assignments, find_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu_floor import children_cpu  # noqa: E402
from installed import installed_environment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2
ORDERS = {"own": {"own": 1.0, "longest": 1e9}, "longest": {"own": 1e9}}
"""The gradings' durations recorded before a grading, so that :func:`grader.grading.timings.plan` picks each order."""


def check(assignment: str, file: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one ``grader check`` of the reference, two checks at a time."""
    reference = ROOT / "reference" / find_assignment(assignment).module_file
    env = {**installed_environment(), "GRADER_CHECK_TIMINGS": str(file)}
    cpu, start = children_cpu(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", assignment, str(reference), "--check-workers", str(WORKERS)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    wall = time.monotonic() - start
    if "all checks passed" not in done.stdout:
        raise SystemExit(f"{assignment}: the reference did not get full marks:\n{done.stdout[-2000:]}")
    return wall, children_cpu() - cpu


def set_order(assignment: str, file: Path, order: str) -> None:
    """Record the gradings' durations so that the next check of ``assignment`` runs in ``order``."""
    entries = json.loads(file.read_text(encoding="utf-8"))
    entry = entries[timings.assignment_key(find_assignment(assignment))]
    if not entry.get("checks"):
        raise SystemExit(f"{assignment}: the first check kept no check's duration")
    entry["walls"] = {str(WORKERS): ORDERS[order]}
    file.write_text(json.dumps(entries), encoding="utf-8")


def measure(assignment: str, runs: int, folder: Path) -> dict[str, list[tuple[float, float]]]:
    file = folder / f"{assignment}.json"
    check(assignment, file)  # the checks' own order: each one's duration kept
    found: dict[str, list[tuple[float, float]]] = {order: [] for order in ORDERS}
    for _ in range(runs):
        for order in ORDERS:
            set_order(assignment, file, order)
            found[order].append(check(assignment, file))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("assignments", nargs="*", help="default: every bundled assignment")
    parser.add_argument("--runs", type=int, default=3, help="gradings in each order (default 3)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table to FILE")
    args = parser.parse_args()
    names = args.assignments or [a.name for a in bundled_assignments()]
    print(f"load average before: {os.getloadavg()}", flush=True)
    lines = [
        "| assignment | own order: wall | CPU | longest first: wall | CPU | longest first / own |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    with tempfile.TemporaryDirectory(prefix="grader-check-order-") as tmp:
        for name in names:
            found = measure(name, max(1, args.runs), Path(tmp))
            own, longest = ({k: statistics.median(v[i] for v in found[o]) for i, k in enumerate(("wall", "cpu"))}
                            for o in ORDERS)
            lines.append(f"| {name} | {own['wall']:.2f} s | {own['cpu']:.2f} s | {longest['wall']:.2f} s | "
                         f"{longest['cpu']:.2f} s | {longest['wall'] / own['wall']:.2f} |")
            print(lines[-1], flush=True)
    print(f"load average after: {os.getloadavg()}", flush=True)
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
