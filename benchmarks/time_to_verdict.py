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

An entry whose own code is slower than the reference's (it sleeps where the reference does not)
waits longer for its verdict whatever the grader does. Where its header names the same program
with its bug fixed (``# fixed-twin: correct/NAME.py``, beside the assignment's ``buggy`` folder),
that twin is timed in the same turns, and the last column is the entry's time against the twin's:
what the deadlock itself costs. Each submission keeps its own file of check timings
(``GRADER_CHECK_TIMINGS``), so that one's gradings never choose how another's checks run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.model.assignment import find_assignment  # noqa: E402

TWIN = "# fixed-twin:"


def entries() -> list[tuple[str, Path, Path | None]]:
    """(assignment, submission, its fixed twin or ``None``) for every corpus entry whose checks deadlock on every run."""
    found = []
    for path in sorted(ROOT.glob("tests/corpus/*/buggy/*.py")):
        head = path.read_text(encoding="utf-8").splitlines()[:10]
        if any(line.startswith("# expect-deadlock:") for line in head):
            twins = [path.parent.parent / line.removeprefix(TWIN).strip() for line in head if line.startswith(TWIN)]
            found.append((path.parent.parent.name, path, twins[0] if twins else None))
    return found


def timed(assignment: str, submission: Path, timings: Path) -> tuple[float, str]:
    """Wall seconds of ``grader check`` and its score line; ``timings``: that submission's file of check timings."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "grader", "check", assignment, str(submission), "-q"],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800,
                          env={**os.environ, "GRADER_CHECK_TIMINGS": str(timings)})
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
    rows = ["| assignment | deadlocking entry | its time (median) | reference (median) | ratio "
            "| its twin, fixed (median) | ratio to the twin | scores | load |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, {args.runs} runs each", flush=True)
    print("\n".join(rows), flush=True)
    status = 0
    with tempfile.TemporaryDirectory(prefix="time-to-verdict-") as tmp:
        for name, submission, twin in entries():
            row, right = _row(name, submission, twin, args.runs, Path(tmp))
            status = status if right else 1
            rows.append(row)
            print(row, flush=True)
    if args.markdown:
        args.markdown.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return status


def _row(name: str, submission: Path, twin: Path | None, runs: int, tmp: Path) -> tuple[str, bool]:
    """The table's row for one entry, and whether every score was as it must be (the references' and twins' full)."""
    reference = ROOT / "reference" / find_assignment(name).module_file
    sides = [(submission, False), (reference, True)] + ([(twin, True)] if twin is not None else [])
    load = os.getloadavg()[0]
    times: dict[Path, list[float]] = {side: [] for side, _ in sides}
    scores: set[tuple[bool, str]] = set()
    for _ in range(runs):
        for index, (side, correct) in enumerate(sides):
            seconds, score = timed(name, side, tmp / f"{name}-{index}-timings.json")
            times[side].append(seconds)
            scores.add((correct, score))
    right = all(full_marks(score) == correct for correct, score in scores)
    a, b = statistics.median(times[submission]), statistics.median(times[reference])
    fixed = f"{statistics.median(times[twin]):.1f} s ({twin.name})" if twin is not None else "-"
    against = f"{a / statistics.median(times[twin]):.2f}x" if twin is not None else "-"
    row = (f"| {name} | {submission.name} | {a:.1f} s | {b:.1f} s | {a / b:.2f}x | {fixed} | {against} | "
           f"{', '.join(sorted(s for _, s in scores))} | {load:.1f} to {os.getloadavg()[0]:.1f} |")
    return row, right


if __name__ == "__main__":
    sys.exit(main())
