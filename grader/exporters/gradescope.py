"""Gradescope exporter: ``results.json`` per Gradescope's autograder specification.

Top level: ``score``, ``execution_time`` (seconds, a number), ``output``,
``output_format``, ``visibility`` and ``tests``; each test has ``name``,
``number``, ``score``, ``max_score``, ``status`` (``passed``/``failed``),
``output``, ``output_format`` and ``visibility``. If the checks could not run
at all, the student sees a visible "Autograder failed" test worth nothing and
the instructor a hidden one with the details, and the file is still valid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..results import Status, SubmissionResult

__all__ = ["to_gradescope", "write_gradescope"]


def _test_output(check: Any) -> str:
    parts = []
    if check.status is not Status.PASSED:
        label = {Status.FAILED: "Failed", Status.TIMED_OUT: "Timed out", Status.ERROR: "Error"}[check.status]
        parts.append(f"{label}. {check.message}".strip())
        if check.diagnostics and check.status is not Status.ERROR:
            parts.append(check.diagnostics)
    else:
        parts.append("Passed.")
    if check.output:
        parts.append("Output of your program:\n" + check.output)
    return "\n\n".join(parts)


def to_gradescope(result: SubmissionResult) -> dict[str, Any]:
    """The results.json document for ``result``."""
    if result.error:
        return {
            "score": 0.0,
            "execution_time": round(result.duration, 3),
            "output": "The autograder could not grade this submission. Your instructor has the details.",
            "output_format": "text",
            "visibility": "visible",
            "tests": [
                {
                    "name": "Autograder failed",
                    "number": "1",
                    "score": 0.0,
                    "max_score": 0.0,
                    "status": "failed",
                    "output": f"The autograder could not grade this submission: {result.error}. "
                    "This is not a verdict on your code; tell your instructor.",
                    "output_format": "text",
                    "visibility": "visible",
                },
                {
                    "name": "Autograder failed (details for staff)",
                    "number": "2",
                    "score": 0.0,
                    "max_score": 0.0,
                    "status": "failed",
                    "output": result.error_detail or result.error,
                    "output_format": "text",
                    "visibility": "hidden",
                },
            ],
        }
    tests = []
    for number, check in enumerate(result.checks, start=1):
        tests.append(
            {
                "name": check.name,
                "number": str(number),
                "score": check.points,
                "max_score": check.max_points,
                "status": "passed" if check.passed else "failed",
                "output": _test_output(check),
                "output_format": "text",
                "visibility": check.visibility,
            }
        )
    passed = sum(1 for c in result.checks if c.passed)
    summary = f"{passed} of {len(result.checks)} checks passed: {result.score:g}/{result.max_score:g} points."
    return {
        "score": result.score,
        "execution_time": round(result.duration, 3),
        "output": summary,
        "output_format": "text",
        "visibility": "visible",
        "tests": tests,
    }


def write_gradescope(result: SubmissionResult, path: Path) -> None:
    """Write results.json (atomically: a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_gradescope(result), indent=1), encoding="utf-8")
    tmp.replace(path)
