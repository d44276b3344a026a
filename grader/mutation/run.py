"""``grader mutants``: grade every mutant of the reference several times and judge the checks by them.

Runs in the controller. The reference is graded first and must get full marks (else nothing the
mutants show means anything). Each mutant is then a submission of a batch
(:func:`grader.grading.batch.grade_all`), graded ``runs`` times, ``jobs`` at a time. Per mutant:

- ``killed``: it lost points on every run (the checks that took them are named);
- ``flaky``: it lost points on some runs only, so a check caught the bug by luck (the worst outcome);
- ``survived``: full marks on every run: no check looks at what it broke;
- ``error``: a run could not be graded (the grader's failure), so nothing is known;
- ``equivalent``: marked so in ``assignment.toml``, with a reason; not graded.

A mutant counts as killed on a run as soon as one check loses points, so only the first run of
each mutant grades every check (it names every check that kills it). The later runs run the checks
that took points on the first run first, and stop at the first check that loses points
(:class:`grader.grading.grade.StopEarly`); a run where no check loses points still grades every
check, so ``flaky`` and ``survived`` are as exact as with full gradings. ``full_runs`` grades every
check on every run.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from grader.grading.batch import Progress, StudentSubmission, grade_all
from grader.grading.grade import StopEarly, default_check_workers, grade_submission
from grader.model.assignment import Assignment
from grader.model.problems import problems_of
from grader.model.results import SubmissionResult
from grader.mutation.config import mutants_config
from grader.mutation.mutants import Mutant, MutationError, generate, instructor_operators, not_importable
from grader.mutation.operators import OPERATORS, Operator

__all__ = ["STATUSES", "MutantVerdict", "MutationReport", "ReferenceFailed", "run_mutants"]

STATUSES = ("killed", "flaky", "survived", "error", "equivalent")


class ReferenceFailed(MutationError):
    """The reference itself does not get full marks: the mutants cannot be judged."""


@dataclass
class MutantVerdict:
    mutant: Mutant
    status: str
    runs: int = 0
    killed_runs: int = 0
    killers: dict[str, int] = field(default_factory=dict)
    """Check id -> on how many runs it took points."""
    titles: dict[str, str] = field(default_factory=dict)
    """Check id -> its title."""
    graded: dict[str, int] = field(default_factory=dict)
    """Check id -> on how many runs it was graded (a run that stopped early did not grade them all)."""
    checks_graded: list[int] = field(default_factory=list)
    """How many checks each run graded, in the order of the runs."""
    reason: str = ""
    """Why it is equivalent (the instructor's words), or why a run could not be graded."""

    def to_dict(self) -> dict[str, Any]:
        m = self.mutant
        return {
            "name": m.name, "operator": m.operator, "function": m.function, "line": m.line, "what": m.what,
            "status": self.status, "runs": self.runs, "killed_runs": self.killed_runs, "killers": self.killers,
            "titles": self.titles, "graded": self.graded, "checks_graded": self.checks_graded,
            "reason": self.reason, "diff": m.diff,
        }


@dataclass
class MutationReport:
    assignment: str
    title: str
    reference: str
    runs: int
    jobs: int
    verdicts: list[MutantVerdict] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    """Mutants left out because they do not import, and why."""
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    """The one-minute load average when the grading started and when it ended."""
    full_runs: bool = False
    """Every run graded every check (else the runs after the first stopped at the first check that lost points)."""
    checks: int = 0
    """How many checks a full grading runs (those of the reference's grading)."""

    def counts(self) -> dict[str, int]:
        found = Counter(v.status for v in self.verdicts)
        return {s: found.get(s, 0) for s in STATUSES}

    @property
    def judged(self) -> int:
        """The non-equivalent mutants."""
        return sum(1 for v in self.verdicts if v.status != "equivalent")

    @property
    def exit_code(self) -> int:
        """0 when every non-equivalent mutant was killed on every run, else 1."""
        return 0 if all(v.status in ("killed", "equivalent") for v in self.verdicts) else 1

    def score_line(self) -> str:
        c = self.counts()
        return (
            f"Score: {c['killed']}/{self.judged} non-equivalent mutants killed on every run of {self.runs} "
            f"({c['survived']} survived, {c['flaky']} killed only sometimes, {c['error']} not graded, "
            f"{c['equivalent']} equivalent; {self.seconds:.0f}s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "assignment": self.assignment, "title": self.title, "reference": self.reference, "runs": self.runs,
            "jobs": self.jobs, "full_runs": self.full_runs, "checks": self.checks, "counts": self.counts(),
            "judged": self.judged, "seconds": round(self.seconds, 1),
            "load": list(self.load), "dropped": self.dropped, "mutants": [v.to_dict() for v in self.verdicts],
        }


def _operators(assignment: Assignment) -> tuple[dict[str, Operator], dict[str, str]]:
    config = mutants_config(assignment.path)
    operators = dict(OPERATORS)
    if config.operators is not None:
        operators.update(instructor_operators(config.operators))
    return operators, config.equivalent


def _check_equivalents(equivalent: dict[str, str], mutants: list[Mutant], assignment: Assignment) -> None:
    names = [m.name for m in mutants]
    unknown = [n for n in equivalent if n not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"; did you mean {close[0]}?" if close else " (`grader mutants` lists the names)"
        raise MutationError(
            f"{assignment.path / 'assignment.toml'}: [[mutants.equivalent]] names {', '.join(unknown)}, "
            f"which is not a mutant of the reference{hint}"
        )


def _grade_reference(assignment: Assignment, reference: Path, unsafe: bool) -> int:
    """Grade the reference; how many checks it ran. Raises :class:`ReferenceFailed` unless it gets full marks."""
    result = grade_submission(assignment, reference, student="reference", check_workers=default_check_workers(1), unsafe=unsafe)
    problems = problems_of(result.metadata)
    if problems:
        raise ReferenceFailed(f"the assignment is broken: {problems[0].splitlines()[0]} (`grader validate {assignment.name}`)")
    if not result.graded:
        raise ReferenceFailed(f"the reference {reference} could not be graded: {result.error or result.no_submission}")
    lost = [c.id for c in result.checks if not c.passed]
    if lost:
        raise ReferenceFailed(
            f"the reference {reference} loses points ({result.score:g}/{result.max_score:g}; failed: {', '.join(lost)}), "
            "so a killed mutant proves nothing; fix the reference or the checks first (`grader check`)"
        )
    return len(result.checks)


def _verdict(mutant: Mutant, results: list[SubmissionResult], checks: int) -> MutantVerdict:
    """The verdict on ``mutant`` from its runs; ``checks``: how many checks a full grading runs."""
    verdict = MutantVerdict(mutant, "survived", runs=len(results))
    errors = [r.error or "not graded" for r in results if not r.graded]
    errors += [
        f"a run graded {len(r.checks)} of the {checks} checks and none lost points: it stopped before its end"
        for r in results
        if r.graded and r.full_marks and len(r.checks) < checks
    ]
    for result in results:
        verdict.checks_graded.append(len(result.checks))
        for check in result.checks:
            verdict.graded[check.id] = verdict.graded.get(check.id, 0) + 1
        if result.graded and not result.full_marks:
            verdict.killed_runs += 1
            for check in result.checks:
                if not check.passed:
                    verdict.killers[check.id] = verdict.killers.get(check.id, 0) + 1
                    verdict.titles[check.id] = check.name or check.id
    if errors:
        verdict.status, verdict.reason = "error", errors[0]
    elif verdict.killed_runs == len(results):
        verdict.status = "killed"
    elif verdict.killed_runs:
        verdict.status = "flaky"
    return verdict


def _write_mutants(mutants: list[Mutant], folder: Path, module_file: str) -> dict[str, Path]:
    """Each mutant as ``folder/NNN/<module>``; the mutants that do not import are dropped (with why) by the caller."""
    files = {}
    for index, mutant in enumerate(mutants):
        path = folder / f"{index:03d}" / module_file
        path.parent.mkdir()
        path.write_text(mutant.source, encoding="utf-8")
        files[mutant.name] = path
    return files


def _first_checks(result: SubmissionResult) -> tuple[str, ...]:
    """The checks that took points from ``result``, quickest first: the ones a later run grades first."""
    lost = sorted((c for c in result.checks if not c.passed), key=lambda c: c.duration)
    return tuple(dict.fromkeys(c.id for c in lost))


def _grade_mutants(
    assignment: Assignment, mutants: list[Mutant], files: dict[str, Path], report: MutationReport, unsafe: bool, stream: TextIO
) -> list[MutantVerdict]:
    """Run 1 of every mutant grades every check; then runs 2..N, which stop early unless ``report.full_runs``."""
    runs = report.runs
    if not mutants:
        return []
    progress = Progress(len(mutants) * runs, stream).update

    def submission(mutant: Mutant, run: int, stop_early: StopEarly | None = None) -> StudentSubmission:
        return StudentSubmission(f"{mutant.name} (run {run})", files[mutant.name].parent, mutant.name, stop_early=stop_early)

    later = range(2, runs + 1)
    subs = [submission(m, 1) for m in mutants] + ([submission(m, r) for m in mutants for r in later] if report.full_runs else [])
    results = grade_all(assignment, subs, jobs=report.jobs, on_result=progress, unsafe=unsafe)
    if not report.full_runs and runs > 1:
        subs += [submission(m, r, StopEarly(_first_checks(results[i]))) for i, m in enumerate(mutants) for r in later]
        results += grade_all(assignment, subs[len(mutants):], jobs=report.jobs, on_result=progress, unsafe=unsafe)
    by_mutant: dict[str, list[SubmissionResult]] = {m.name: [] for m in mutants}
    for sub, result in zip(subs, results):
        by_mutant[sub.label].append(result)
    return [_verdict(m, by_mutant[m.name], report.checks) for m in mutants]


def run_mutants(
    assignment: Assignment,
    reference: Path,
    *,
    runs: int = 3,
    jobs: int = 1,
    unsafe: bool = False,
    stream: TextIO | None = None,
    full_runs: bool = False,
) -> MutationReport:
    """Grade every mutant of ``reference`` ``runs`` times; raises :class:`MutationError` when it cannot run.

    ``full_runs``: every run grades every check (default: the runs after the first stop at the first
    check that loses points)."""
    stream = stream if stream is not None else sys.stderr
    operators, equivalent = _operators(assignment)
    try:
        source = reference.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MutationError(f"cannot read the reference {reference}: {exc}") from None
    mutants = generate(source, operators, module_file=assignment.module_file)
    _check_equivalents(equivalent, mutants, assignment)
    report = MutationReport(assignment.name, assignment.title, str(reference), runs, jobs, full_runs=full_runs)
    started, load = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="grader-mutants-") as tmp:
        files = _write_mutants(mutants, Path(tmp), assignment.module_file)
        broken = not_importable(files.values())
        report.dropped = {m.name: broken[files[m.name]] for m in mutants if files[m.name] in broken}
        mutants = [m for m in mutants if m.name not in report.dropped]
        print(f"{assignment.name}: grading the reference {reference} first...", file=stream)
        report.checks = _grade_reference(assignment, reference, unsafe)
        graded = [m for m in mutants if m.name not in equivalent]
        print(
            f"{assignment.name}: {len(graded)} mutants, {runs} run(s) each, {jobs} at a time "
            f"({len(mutants) - len(graded)} marked equivalent)",
            file=stream,
        )
        verdicts = {v.mutant.name: v for v in _grade_mutants(assignment, graded, files, report, unsafe, stream)}
    for mutant in mutants:
        reason = equivalent.get(mutant.name)
        report.verdicts.append(verdicts[mutant.name] if reason is None else MutantVerdict(mutant, "equivalent", reason=reason))
    report.seconds, report.load = time.monotonic() - started, (load, os.getloadavg()[0])
    return report
