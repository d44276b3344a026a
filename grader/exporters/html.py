"""HTML exporter: a report per student and a class summary, self-contained.

The pages are rendered from the jinja2 templates in ``grader/templates`` with
autoescaping on, so whatever a student prints or names their files is shown as
text, never as markup. Everything a page needs (CSS, the histogram as inline
SVG, a few lines of script to sort the table and open collapsed sections for
printing) is in the page itself: no network, no CDN.

Python prepares plain view data (numbers already computed, text already
capped); the templates only lay it out.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from grader import __version__
from grader.exporters._common import check_diagnostics
from grader.exporters.files import write_atomic
from grader.model.results import Status, SubmissionResult

__all__ = [
    "OUTPUT_CAP",
    "cap_text",
    "histogram",
    "render_class_html",
    "render_index_html",
    "render_student_html",
    "write_class_html",
    "write_index_html",
    "write_student_html",
]

OUTPUT_CAP = 20_000
STATUS_ORDER = (Status.PASSED, Status.FAILED, Status.TIMED_OUT, Status.ERROR)

_env: Environment | None = None


def _environment() -> Environment:
    global _env
    if _env is None:
        _env = Environment(
            loader=PackageLoader("grader", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        _env.filters["pts"] = lambda value: f"{float(value):g}"
    return _env


def cap_text(text: str, limit: int = OUTPUT_CAP) -> tuple[str, int]:
    """``text`` with its middle cut out when longer than ``limit``; and how many characters were cut."""
    if len(text) <= limit:
        return text, 0
    half = limit // 2
    omitted = len(text) - 2 * half
    return f"{text[:half]}\n… {omitted} characters omitted …\n{text[-half:]}", omitted


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _percent(score: float, max_score: float) -> float:
    return round(100.0 * score / max_score, 1) if max_score > 0 else 0.0


def _check_view(check: Any, checks: Sequence[Any] = ()) -> dict[str, Any]:
    output, omitted = cap_text(check.output or "")
    return {
        "id": check.id,
        "name": check.name or check.id,
        "description": check.description,
        "status": check.status.value,
        "label": check.status.label,
        "points": check.points,
        "max_points": check.max_points,
        "message": check.message,
        "diagnostics": check_diagnostics(check, checks) if check.diagnostics else "",
        "output": output,
        "output_lines": output.count("\n") + 1 if output else 0,
        "output_omitted": omitted,
        "duration": check.duration,
        "visibility": check.visibility,
    }


def render_student_html(result: SubmissionResult, *, title: str = "", back_link: str | None = None) -> str:
    """One student's report as a complete HTML page."""
    counts = {s.value: sum(1 for c in result.checks if c.status is s) for s in STATUS_ORDER}
    detail, detail_omitted = cap_text(result.error_detail or "")
    return (
        _environment()
        .get_template("student.html.j2")
        .render(
            result=result,
            title=title or result.assignment,
            back_link=back_link,
            checks=[_check_view(c, result.checks) for c in result.checks],
            counts=counts,
            percent=_percent(result.score, result.max_score),
            error_detail=detail,
            error_detail_omitted=detail_omitted,
            metadata=_metadata_view(result.metadata),
            generated=_now(),
            version=__version__,
        )
    )


def _metadata_view(metadata: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, value in metadata.items():
        if key == "submitters" and isinstance(value, list):
            text = "; ".join(", ".join(str(v) for v in p.values()) for p in value if isinstance(p, dict))
        elif isinstance(value, bool):
            text = "yes" if value else "no"
        else:
            text = str(value)
        rows.append((key.replace("_", " "), text))
    return rows


def histogram(scores: Sequence[float], max_score: float, *, width: int = 640, height: int = 240) -> dict[str, Any]:
    """Bars for the score distribution, laid out for an SVG of ``width`` x ``height``.

    With a whole-number maximum of at most 30 points there is one bar per score
    (fractions rounded down); otherwise ten bars of 10 % each (100 % in the last).
    """
    if max_score > 0 and float(max_score).is_integer() and max_score <= 30:
        edges = [(float(i), f"{i}") for i in range(int(max_score) + 1)]
        counts = [0] * len(edges)
        for s in scores:
            counts[min(len(edges) - 1, max(0, int(s)))] += 1
        unit = "points"
    else:
        edges = [(float(i * 10), f"{i * 10}%") for i in range(10)]
        counts = [0] * 10
        for s in scores:
            pct = _percent(s, max_score)
            counts[min(9, max(0, int(pct // 10)))] += 1
        unit = "percent"
    left, right, top, bottom = 36, 8, 22, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / len(counts)
    peak = max(counts) if counts and max(counts) > 0 else 1
    bars = []
    for i, ((_, label), count) in enumerate(zip(edges, counts)):
        h = plot_h * count / peak
        x = left + i * slot
        bars.append(
            {
                "x": round(x + slot * 0.1, 2),
                "y": round(top + plot_h - h, 2),
                "w": round(slot * 0.8, 2),
                "h": round(h, 2),
                "cx": round(x + slot / 2, 2),
                "count": count,
                "label": label,
                "show_label": len(counts) <= 16 or i % 2 == 0 or i == len(counts) - 1,
            }
        )
    ticks = sorted({0, peak, peak // 2} if peak >= 2 else {0, peak})
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "unit": unit,
        "base_y": top + plot_h,
        "left": left,
        "right_x": width - right,
        "label_y": top + plot_h + 16,
        "ticks": [{"value": t, "y": round(top + plot_h - plot_h * t / peak, 2)} for t in ticks],
        "total": len(scores),
    }


def _class_view(results: Sequence[SubmissionResult], links: Mapping[str, str]) -> dict[str, Any]:
    graded = [r for r in results if r.graded]
    scores = [r.score for r in graded]
    max_scores = sorted({r.max_score for r in graded})
    max_score = max_scores[-1] if max_scores else 0.0
    checks: dict[str, dict[str, Any]] = {}
    for r in graded:
        for c in r.checks:
            row = checks.setdefault(
                c.id,
                {
                    "id": c.id,
                    "name": c.name or c.id,
                    "max_points": c.max_points,
                    "total": 0,
                    **{s.value: 0 for s in STATUS_ORDER},
                },
            )
            row["total"] += 1
            row[c.status.value] += 1
    for row in checks.values():
        row["rate"] = round(100.0 * row["passed"] / row["total"], 1) if row["total"] else 0.0
    weakest = min(checks.values(), key=lambda r: r["rate"], default=None)
    missing = _missing_view(results, links)
    return {
        "unsafe": next((r.unsafe for r in results if r.unsafe), ""),
        "students": [_student_row(r, links) for r in results if r.no_submission is None],  # the others: listed apart
        "missing": missing,
        "checks": list(checks.values()),
        "weakest": weakest if weakest is not None and weakest["rate"] < 100 else None,
        "histogram": histogram(scores, max_score) if graded else None,
        "stats": {
            "count": len(results),
            "graded": len(graded),
            "not_graded": len(results) - len(graded) - len(missing),
            "no_submission": len(missing),
            "max_score": max_score,
            "mixed_max": len(max_scores) > 1,
            "mean": round(statistics.fmean(scores), 2) if scores else 0.0,
            "median": round(statistics.median(scores), 2) if scores else 0.0,
            "full_marks": sum(1 for r in graded if r.full_marks),
        },
    }


def _student_row(r: SubmissionResult, links: Mapping[str, str]) -> dict[str, Any]:
    return {
        "name": r.student,
        "link": links.get(r.student),
        "graded": r.graded,
        "error": r.error or "",
        "score": r.score,
        "max_score": r.max_score,
        "percent": _percent(r.score, r.max_score),
        "counts": {s.value: sum(1 for c in r.checks if c.status is s) for s in STATUS_ORDER},
        "lost": [c.id for c in r.checks if not c.passed],
        "duration": r.duration,
        "late": bool(r.metadata.get("late")),
        "flagged": len(r.integrity),
    }


def _missing_view(results: Sequence[SubmissionResult], links: Mapping[str, str]) -> list[dict[str, Any]]:
    """The students without a gradable file: who, why, and what their submission held."""
    return [
        {
            "name": r.student,
            "link": links.get(r.student),
            "why": r.no_submission or "",
            "seen": list(r.seen),
            "late": bool(r.metadata.get("late")),
        }
        for r in results
        if r.no_submission is not None
    ]


def render_class_html(
    results: Sequence[SubmissionResult],
    *,
    title: str,
    assignment: str = "",
    links: Mapping[str, str] | None = None,
    source: str = "",
) -> str:
    """The class summary as a complete HTML page."""
    return (
        _environment()
        .get_template("class.html.j2")
        .render(
            title=title,
            assignment=assignment,
            source=source,
            generated=_now(),
            version=__version__,
            **_class_view(results, links or {}),
        )
    )


def render_index_html(classes: Sequence[Mapping[str, Any]], *, title: str) -> str:
    """A landing page listing several class summaries (``title``, ``link``, ``count``, ``mean``, ``max_score``)."""
    return (
        _environment()
        .get_template("overview.html.j2")
        .render(title=title, classes=classes, generated=_now(), version=__version__)
    )


def write_student_html(result: SubmissionResult, path: Path, *, title: str = "", back_link: str | None = None) -> None:
    """Write one student's report to ``path``."""
    write_atomic(path, render_student_html(result, title=title, back_link=back_link))


def write_class_html(
    results: Sequence[SubmissionResult],
    path: Path,
    *,
    title: str,
    assignment: str = "",
    links: Mapping[str, str] | None = None,
    source: str = "",
) -> None:
    """Write the class summary to ``path``."""
    write_atomic(path, render_class_html(results, title=title, assignment=assignment, links=links, source=source))


def write_index_html(classes: Sequence[Mapping[str, Any]], path: Path, *, title: str) -> None:
    """Write a landing page over several class summaries."""
    write_atomic(path, render_index_html(classes, title=title))
