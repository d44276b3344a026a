"""The mutation report: a terminal table, a JSON file and an HTML page (jinja2, autoescaped)."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from grader import __version__
from grader.exporters.files import write_atomic
from grader.mutation.run import MutantVerdict, MutationReport

__all__ = ["render_html", "render_table", "write_html", "write_json"]

LABELS = {"killed": "KILLED", "flaky": "FLAKY", "survived": "SURVIVED", "error": "NOT GRADED", "equivalent": "EQUIVALENT"}


def _killers(verdict: MutantVerdict) -> str:
    if verdict.status == "equivalent":
        return verdict.reason
    if verdict.status == "error":
        return verdict.reason.splitlines()[0] if verdict.reason else "a run could not be graded"
    if not verdict.killers:
        return "no check lost points"
    def share(check: str, n: int) -> str:  # of the runs that graded it (a run that stopped early did not grade them all)
        graded = verdict.graded.get(check, verdict.runs)
        return f"{check} ({n}/{graded})" if n != graded else check

    return ", ".join(share(check, n) for check, n in sorted(verdict.killers.items()))


def render_table(report: MutationReport) -> str:
    """The terminal report: one line per mutant, then the diff of each one not killed on every run, then the score."""
    width = max([len(v.mutant.name) for v in report.verdicts] + [10])
    how = "" if report.full_runs or report.runs == 1 else " (runs after the first stop at the first check that loses points)"
    lines = [f"{report.assignment}: {len(report.verdicts)} mutants of {report.reference}, {report.runs} run(s) each{how}"]
    for v in report.verdicts:
        runs = f"{v.killed_runs}/{v.runs}" if v.status != "equivalent" else "-"
        lines.append(f"  {LABELS[v.status]:<10} {runs:>5}  {v.mutant.name:<{width}}  {_killers(v)}")
    for name, why in report.dropped.items():
        lines.append(f"  (left out: {name} does not import: {why})")
    missed = [v for v in report.verdicts if v.status in ("survived", "flaky", "error")]
    if missed:
        lines.append("")
        lines.append("Mutants the checks did not kill on every run (what no check looks at):")
        for v in missed:
            lines.append(f"{LABELS[v.status]} {v.mutant.name}: {v.mutant.what} (killed on {v.killed_runs} of {v.runs} runs)")
            lines.extend("    " + line for line in v.mutant.diff.rstrip("\n").splitlines())
        lines.append(
            "Expected: every mutant loses points on every run. Look at which clause of the assignment's contract each "
            "diff breaks and add or strengthen the check for it, or mark it [[mutants.equivalent]] in assignment.toml "
            "with the reason no correct check can tell it apart."
        )
    lines.append(report.score_line())
    return "\n".join(lines) + "\n"


def write_json(report: MutationReport, path: Path) -> None:
    write_atomic(path, json.dumps(report.to_dict(), indent=1))


_env: Environment | None = None


def _environment() -> Environment:
    global _env
    if _env is None:
        _env = Environment(
            loader=PackageLoader("grader", "templates"), autoescape=True, undefined=StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )
    return _env


def render_html(report: MutationReport) -> str:
    rows = [
        {
            "name": v.mutant.name, "what": v.mutant.what, "status": v.status, "label": LABELS[v.status],
            "runs": f"{v.killed_runs}/{v.runs}" if v.status != "equivalent" else "",
            "killers": [
                (check, v.titles.get(check, check), n, v.graded.get(check, v.runs)) for check, n in sorted(v.killers.items())
            ],
            "reason": v.reason, "diff": v.mutant.diff, "open": v.status in ("survived", "flaky", "error"),
        }
        for v in report.verdicts
    ]
    return _environment().get_template("mutants.html.j2").render(
        report=report, rows=rows, counts=report.counts(), score=report.score_line(),
        generated=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), version=__version__,
    )


def write_html(report: MutationReport, path: Path) -> None:
    write_atomic(path, render_html(report))
