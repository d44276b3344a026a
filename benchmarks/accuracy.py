"""Measure how often the grader is wrong, and write docs/accuracy.md.

    python benchmarks/accuracy.py                    # every bundled assignment, 3 repeats, 2 gradings at a time
    python benchmarks/accuracy.py --repeats 5 -j 2
    python benchmarks/accuracy.py pool_map --out /tmp/accuracy.md --details /tmp/mutants/
    python benchmarks/accuracy.py --repeats 3 --mutants-from /tmp/mut5/   # mutants from `grader mutants --json` reports

For each bundled assignment it grades, ``--repeats`` times each,

- the labelled corpus ``tests/corpus/<assignment>/``: every ``correct/`` entry must get full marks,
  every ``buggy/`` entry must lose points on the checks its header names (tests/corpus_expectations.py);
- the mutants of ``reference/<assignment>.py`` (``grader mutants``): every one not marked equivalent
  must lose points on every run (the runs after a mutant's first stop at the first check that loses
  points, as ``grader mutants`` does); with ``--mutants-from DIR``, the mutants' verdicts are read from
  the reports ``grader mutants NAME --json DIR/NAME.json`` wrote instead, with the runs they made;

and reports false positives (a correct solution losing a point on any run), false negatives (a buggy
entry or a mutant with full marks on any run), flaky verdicts (an entry or mutant whose verdict, the
status of every check, changed between repeats) and the machine's load average while it ran. The page
is rewritten after each assignment. Exit status 1 when any figure is not zero.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from corpus_expectations import Expectation, expectation  # noqa: E402

from grader.grading.batch import Progress, StudentSubmission, grade_all  # noqa: E402
from grader.model.assignment import Assignment, bundled_assignments  # noqa: E402
from grader.model.results import Status, SubmissionResult  # noqa: E402
from grader.mutation.mutants import MutationError  # noqa: E402
from grader.mutation.report import write_json  # noqa: E402
from grader.mutation.run import run_mutants  # noqa: E402

CORPUS = ROOT / "tests" / "corpus"


@dataclass
class Figures:
    """What one assignment's gradings showed."""

    name: str
    correct: int = 0
    buggy: int = 0
    mutants: int = 0
    equivalent: int = 0
    false_positives: list[str] = field(default_factory=list)
    false_negatives: list[str] = field(default_factory=list)
    misattributed: list[str] = field(default_factory=list)
    flaky: list[str] = field(default_factory=list)
    mutant_runs: int = 0
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)


def verdict(result: SubmissionResult) -> tuple[tuple[str, str], ...]:
    return tuple((c.id, c.status.value) for c in result.checks) if result.graded else (("error", str(result.error)),)


def grade_corpus(assignment: Assignment, repeats: int, jobs: int, figures: Figures) -> None:
    entries = sorted((CORPUS / assignment.name).glob("correct/*.py")) + sorted((CORPUS / assignment.name).glob("buggy/*.py"))
    subs = [
        StudentSubmission(f"{p.parent.name}/{p.stem} (run {r + 1})", p, f"{p.parent.name}/{p.name}")
        for p in entries for r in range(repeats)
    ]
    results = grade_all(assignment, subs, jobs=jobs, on_result=Progress(len(subs)).update) if subs else []
    for index, path in enumerate(entries):
        runs = results[index * repeats : (index + 1) * repeats]
        label = f"{path.parent.name}/{path.name}"
        exp = expectation(path)
        if exp.correct:
            figures.correct += 1
            if any(not r.full_marks for r in runs):
                lost = sorted({c.id for r in runs for c in r.checks if not c.passed})
                lost += ["(not graded)"] if any(not r.graded for r in runs) else []
                figures.false_positives.append(f"{label} (lost points on {', '.join(lost)})")
        else:
            figures.buggy += 1
            if any(r.full_marks for r in runs):
                figures.false_negatives.append(f"{label} (full marks on {sum(r.full_marks for r in runs)} of {repeats} runs)")
            elif not all(_lost_where_expected(r, exp) for r in runs):
                figures.misattributed.append(f"{label} (lost points, but not on every check its header names)")
        if len({verdict(r) for r in runs}) > 1:
            figures.flaky.append(f"{label} ({len({verdict(r) for r in runs})} different verdicts in {repeats} runs)")


def _lost_where_expected(result: SubmissionResult, exp: Expectation) -> bool:
    """Whether every check the entry's header names failed (or timed out, where it says so)."""
    by_id = {c.id: c for c in result.checks}
    failed = all(n in by_id and not by_id[n].passed for n in exp.failing)
    return failed and all(n in by_id and by_id[n].status is Status.TIMED_OUT for n in exp.timing_out)


def add_mutants(report: dict[str, Any], figures: Figures) -> None:
    """The verdicts of a mutation report (``MutationReport.to_dict()``, the JSON of ``grader mutants --json``)."""
    figures.mutants = report["judged"]
    figures.equivalent = report["counts"]["equivalent"]
    figures.mutant_runs = report["runs"]
    for v in report["mutants"]:
        if v["status"] in ("survived", "flaky"):
            killed = f"killed on {v['killed_runs']} of {v['runs']} runs"
            figures.false_negatives.append(f"mutant {v['name']} ({v['what']}; {killed})")
        elif v["status"] == "error":  # unknown: counted against the checks until a grading shows otherwise
            figures.false_negatives.append(f"mutant {v['name']} ({v['what']}; a run could not be graded: {v['reason']})")
        if v["status"] == "flaky":
            figures.flaky.append(f"mutant {v['name']} (killed on {v['killed_runs']} of {v['runs']} runs)")


def mutants_from(folder: Path, assignment: Assignment, figures: Figures, wait: float = 0.0) -> str:
    """Read the assignment's mutants from ``folder/<name>.json``; a sentence saying when and how they were graded."""
    path = folder / f"{assignment.name}.json"
    deadline = time.monotonic() + wait * 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(10)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        add_mutants(report, figures)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        figures.false_negatives.append(f"the mutants could not be read from {path}: {exc}")
        return ""
    made = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{assignment.name}: `grader mutants {assignment.name} --runs {report['runs']} -j {report['jobs']}`, "
        f"{report['seconds'] / 60:.0f} min, load {report['load'][0]:.1f} / {report['load'][1]:.1f}, finished {made}"
    )


def render(figures: list[Figures], pending: list[str], command: str, repeats: int, jobs: int, started: str,
           sources: list[str]) -> str:
    rows = [
        f"| {f.name} | {f.correct} | {f.buggy} | {f.mutants} ({f.equivalent} equivalent) | {repeats} / {f.mutant_runs} | "
        f"{len(f.false_positives)} | {len(f.false_negatives)} | {len(f.flaky)} | "
        f"{f.load[0]:.1f} / {f.load[1]:.1f} | {f.seconds / 60:.0f} min |"
        for f in figures
    ]
    rows += [f"| {name} | not measured in this run | | | | | | | | |" for name in pending]
    how = (
        "Each mutant's first run grades every check; its later runs grade first the checks that killed it on the first "
        "run and stop at the first check that loses points (a run where none does grades every check), as `grader mutants` "
        "does, so a mutant killed on only some runs is found as surely as with full gradings."
    )
    if sources:
        how += " The mutants' verdicts were read from these `grader mutants --json` reports:"
    lines = [
        "# Accuracy: how often the grader is wrong",
        "",
        "Measured by grading the project's labelled corpora (`tests/corpus/<assignment>/correct` and `buggy`, each buggy",
        "entry naming the checks it must lose) and the mutants of each reference solution (`grader mutants`: the",
        "reference with one classic mistake put in), several times each, on a machine shared with other work.",
        "",
        "- **False positive**: a correct solution that lost a point on any run.",
        "- **False negative**: a buggy corpus entry, or a mutant not marked equivalent, with full marks on any run.",
        "- **Flaky verdict**: a corpus entry whose verdict (the status of every check) changed between repeats, or a",
        "  mutant killed on some runs only (with one repeat, a corpus entry has nothing to compare).",
        "",
        f"These figures were produced by `{command}` ({repeats} repeat{'s' if repeats != 1 else ''} of every corpus entry,",
        f"{jobs} gradings at a time), started {started} on {os.cpu_count()} CPUs, Python {platform.python_version()}.",
        "The load column is the one-minute load average when the assignment's gradings started and ended",
        "(other work ran on the machine at the same time). Regenerate the page with the same command.",
        "",
        how,
        *[f"- {line}" for line in sources],
        "",
        "| assignment | correct entries | buggy entries | mutants | repeats (corpus / mutants) | false positives "
        "| false negatives | flaky verdicts | load (start / end) | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    for f in figures:
        found = [("False positives", f.false_positives), ("False negatives", f.false_negatives), ("Flaky verdicts", f.flaky),
                 ("Buggy entries that lost points elsewhere than their header says", f.misattributed)]
        if any(items for _, items in found):
            lines += [f"## {f.name}", ""]
            for title, items in found:
                if items:
                    lines += [f"{title}:", "", *[f"- {item}" for item in items], ""]
    return "\n".join(lines)


def measure(assignment: Assignment, args: argparse.Namespace, sources: list[str]) -> Figures:
    """Grade one assignment's corpus and mutants (or read its mutants from ``--mutants-from``)."""
    figures = Figures(assignment.name)
    began, load = time.monotonic(), os.getloadavg()[0]
    grade_corpus(assignment, args.repeats, args.jobs, figures)
    if args.mutants_from:
        source = mutants_from(Path(args.mutants_from), assignment, figures, args.wait)
        sources += [source] if source else []
    else:
        try:
            report = run_mutants(assignment, ROOT / "reference" / assignment.module_file, runs=args.repeats, jobs=args.jobs)
        except MutationError as exc:
            figures.false_negatives.append(f"the mutants could not be graded: {exc}")
        else:
            add_mutants(report.to_dict(), figures)
            if args.details:
                write_json(report, Path(args.details) / f"{assignment.name}.json")
    figures.seconds, figures.load = time.monotonic() - began, (load, os.getloadavg()[0])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="bundled assignments to measure, in this order (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="gradings of every entry and mutant (default 3)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="gradings at the same time (default 2)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "accuracy.md"), help="the page to write (default docs/accuracy.md)")
    parser.add_argument("--details", metavar="DIR", help="also write each assignment's mutation report as DIR/<assignment>.json")
    parser.add_argument(
        "--mutants-from", metavar="DIR",
        help="read each assignment's mutants from DIR/<assignment>.json (`grader mutants NAME --json`) instead of grading them",
    )
    parser.add_argument(
        "--wait", metavar="MINUTES", type=float, default=0.0,
        help="with --mutants-from, wait up to MINUTES for a report that is not there yet (still being made)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.jobs < 1:
        parser.error("--repeats and -j must be at least 1")
    bundled = {a.name: a for a in bundled_assignments()}
    assignments = [bundled[n] for n in args.assignments if n in bundled] if args.assignments else list(bundled.values())
    unknown = [n for n in args.assignments if n not in bundled]
    if unknown:
        parser.error(f"no bundled assignment named {', '.join(unknown)} (bundled: {', '.join(bundled)})")
    command = "python benchmarks/accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    started = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    done: list[Figures] = []
    sources: list[str] = []
    for index, assignment in enumerate(assignments):
        done.append(measure(assignment, args, sources))
        pending = [a.name for a in assignments[index + 1 :]]
        page = render(done, pending, command.strip(), args.repeats, args.jobs, started, sources)
        Path(args.out).write_text(page + "\n", encoding="utf-8")
    wrong = sum(len(f.false_positives) + len(f.false_negatives) + len(f.flaky) for f in done)
    print(f"wrote {args.out}: {wrong} wrong or flaky verdict(s)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
