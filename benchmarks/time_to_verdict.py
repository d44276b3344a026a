"""Time to verdict of submissions that deadlock, against the same assignment's reference solution.

    python benchmarks/time_to_verdict.py                 # every corpus entry marked `# expect-deadlock:`
    python benchmarks/time_to_verdict.py --runs 5 --markdown /tmp/ttv.md

For every buggy corpus entry whose header says ``# expect-deadlock:`` (its named checks deadlock on
every run; the grader must end them as soon as the kernel proves it), ``grader check`` of the entry
and ``grader check`` of ``reference/<module>`` are timed in turn, ``--runs`` times each, in one
invocation: the ratio of the medians is the figure (the goal: at most 2x). Wall time of the whole
command; the one-minute load average at the start and end of each pair is printed beside it, since
a machine shared with other work slows both sides. Exit status 1 when a reference loses a point or
an entry gets full marks (the figure would mean nothing).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.model.assignment import find_assignment  # noqa: E402


def entries() -> list[tuple[str, Path]]:
    """(assignment, submission) for every corpus entry whose checks deadlock on every run."""
    found = []
    for path in sorted(ROOT.glob("tests/corpus/*/buggy/*.py")):
        head = path.read_text(encoding="utf-8").splitlines()[:10]
        if any(line.startswith("# expect-deadlock:") for line in head):
            found.append((path.parent.parent.name, path))
    return found


def timed(assignment: str, submission: Path) -> tuple[float, str]:
    """Wall seconds of ``grader check`` and its score line."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "grader", "check", assignment, str(submission), "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800)
    score = next((line.split("(")[0].strip() for line in done.stdout.splitlines() if line.startswith("Score")), "")
    return time.monotonic() - start, score or f"no score (exit {done.returncode})"


def full_marks(score: str) -> bool:
    """Whether a ``Score: X/Y`` line gives every point."""
    got, _, most = score.removeprefix("Score:").strip().partition("/")
    return got.strip() == most.strip() != ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="gradings of each side (default 3)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args(argv)
    rows = ["| assignment | deadlocking entry | its time (median) | reference (median) | ratio | scores | load |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} runs each", flush=True)
    print("\n".join(rows), flush=True)
    status = 0
    for name, submission in entries():
        reference = ROOT / "reference" / find_assignment(name).module_file
        load = os.getloadavg()[0]
        hung, ref, scores = [], [], set()
        for _ in range(args.runs):
            for side, times in ((submission, hung), (reference, ref)):
                seconds, score = timed(name, side)
                times.append(seconds)
                scores.add((side is reference, score))
        if any(full_marks(score) != is_ref for is_ref, score in scores):
            status = 1
        a, b = statistics.median(hung), statistics.median(ref)
        row = (f"| {name} | {submission.name} | {a:.1f} s | {b:.1f} s | {a / b:.2f}x | "
               f"{', '.join(sorted(s for _, s in scores))} | {load:.1f} to {os.getloadavg()[0]:.1f} |")
        rows.append(row)
        print(row, flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
