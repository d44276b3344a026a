"""Grade every corpus entry many times, also under parallel load, and report any disagreement.

    python benchmarks/stress.py                       # 20 runs per entry, 2 gradings at a time
    python benchmarks/stress.py --runs 5 fifo_queue   # some assignments only
    python benchmarks/stress.py --markdown out.md     # also write the table as Markdown

A verdict is the status of every check. An entry *disagrees* when two runs
give different verdicts, and is *wrong* when a correct solution loses points
or a buggy one keeps a check its header says must fail. Exit status 1 if any
entry disagreed or was wrong.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus_expectations import expectation  # noqa: E402

from grader.grading.grade import grade_submission  # noqa: E402
from grader.model.assignment import bundled_dir, find_assignment  # noqa: E402
from grader.model.results import Status, SubmissionResult  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


def entries(names: list[str]) -> list[Path]:
    bundled = {p.name for p in bundled_dir().iterdir() if (p / "assignment.toml").is_file()}
    wanted = set(names) or bundled
    out = []
    for folder in sorted(CORPUS.iterdir()):
        if folder.name in bundled and folder.name in wanted:
            out.extend(sorted(folder.glob("correct/*.py")) + sorted(folder.glob("buggy/*.py")))
    return out


def verdict(result: SubmissionResult) -> tuple[tuple[str, str], ...]:
    return tuple((c.id, c.status.value) for c in result.checks) if result.graded else (("error", str(result.error)),)


def is_right(path: Path, result: SubmissionResult) -> bool:
    exp = expectation(path)
    if not result.graded:
        return False
    by_id = {c.id: c for c in result.checks}
    if exp.correct:
        return result.full_marks
    if result.score >= result.max_score:
        return False
    if any(name not in by_id or by_id[name].passed for name in exp.failing):
        return False
    return all(name in by_id and by_id[name].status is Status.TIMED_OUT for name in exp.timing_out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="assignments to stress (default: all with a corpus)")
    parser.add_argument("--runs", type=int, default=20, help="gradings per entry (default 20)")
    parser.add_argument("--parallel", type=int, default=2, help="gradings at the same time (default 2)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the summary table to PATH")
    args = parser.parse_args(argv)
    paths = entries(args.assignments)
    if not paths:
        print("no corpus entries found", file=sys.stderr)
        return 2
    jobs = [(path, i) for i in range(args.runs) for path in paths]
    verdicts: dict[Path, Counter[tuple[tuple[str, str], ...]]] = defaultdict(Counter)
    wrong: Counter[Path] = Counter()
    durations: dict[str, list[float]] = defaultdict(list)
    started = time.monotonic()

    def grade(job: tuple[Path, int]) -> tuple[Path, SubmissionResult]:
        path, _ = job
        return path, grade_submission(find_assignment(path.parent.parent.name), path)

    done = 0
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        for path, result in pool.map(grade, jobs):
            done += 1
            verdicts[path][verdict(result)] += 1
            if not is_right(path, result):
                wrong[path] += 1
            if expectation(path).correct:
                durations[path.parent.parent.name].append(result.duration)
            if done % 10 == 0 or done == len(jobs):
                print(f"  {done}/{len(jobs)} gradings, {time.monotonic() - started:.0f}s", file=sys.stderr)
    rows = []
    per_assignment: dict[str, list[Path]] = defaultdict(list)
    for path in paths:
        per_assignment[path.parent.parent.name].append(path)
    bad = 0
    for name, group in per_assignment.items():
        disagreements = sum(1 for p in group if len(verdicts[p]) > 1)
        wrongs = sum(wrong[p] for p in group)
        bad += disagreements + wrongs
        times = durations.get(name) or [0.0]
        rows.append(
            f"| {name} | {len(group)} | {len(group) * args.runs} | {disagreements} | {wrongs} | "
            f"{statistics.median(times):.1f} s | {max(times):.1f} s |"
        )
        for p in group:
            if len(verdicts[p]) > 1 or wrong[p]:
                print(f"DISAGREEMENT {p.relative_to(ROOT)}: {dict(verdicts[p])}", file=sys.stderr)
    table = "\n".join(
        [
            f"Runs per entry: {args.runs}, {args.parallel} gradings at a time; total {time.monotonic() - started:.0f} s.",
            "",
            "| assignment | entries | gradings | entries that disagreed | wrong verdicts "
            "| median time, correct | max time, correct |",
            "| --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
