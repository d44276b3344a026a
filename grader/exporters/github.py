"""GitHub Classroom exporter: the autograding runner result the grading reporter reads.

Followed: the source of GitHub Classroom's ``autograding-grading-reporter``
(github-education-resources/autograding-grading-reporter, ``src/main.js``,
``notify-classroom.js``, ``console-results.js``) and the runner output of its
``autograding-command-grader``: a runner step sets the output ``result`` to
base64 of a JSON object ``{version, status, max_score, tests}`` where
``status`` is ``pass``, ``fail`` or ``error`` and each test has ``name``,
``status``, ``score``, ``message`` (plus ``test_code``, ``filename``,
``line_no``, ``execution_time``). The reporter is given the step id in
``runners`` and reads ``<STEP_ID>_RESULTS`` from its environment; it counts a
test as passed when its ``status`` is ``pass`` and sends the sum of the tests'
``score`` out of ``max_score`` to GitHub Classroom.

A GitHub Actions step sets an output by appending ``name=value`` to the file
named in ``$GITHUB_OUTPUT``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

from grader.exporters._common import check_message, shown_checks
from grader.model.results import Status, SubmissionResult

__all__ = ["GitHubOutputError", "encode_runner_result", "to_github_classroom", "write_github_output"]

VERSION = 1


class GitHubOutputError(RuntimeError):
    """``$GITHUB_OUTPUT`` is not set or cannot be written."""


def _test_status(status: Status) -> str:
    if status is Status.PASSED:
        return "pass"
    if status is Status.ERROR:
        return "error"
    return "fail"


def to_github_classroom(result: SubmissionResult) -> dict[str, Any]:
    """The runner result for ``result``."""
    if result.error:
        return {
            "version": VERSION,
            "status": "error",
            "max_score": 0,
            "tests": [
                {
                    "name": "Autograder failed",
                    "status": "error",
                    "score": 0,
                    "message": f"The autograder could not grade this submission: {result.error}. "
                    "This is not a verdict on your code; tell your instructor.",
                    "test_code": f"grader check {result.assignment}",
                    "filename": "",
                    "line_no": 0,
                    "execution_time": f"{result.duration:.2f}s",
                }
            ],
        }
    if result.no_submission is not None:
        return {
            "version": VERSION,
            "status": "fail",
            "max_score": 0,
            "tests": [
                {
                    "name": "No submission found",
                    "status": "fail",
                    "score": 0,
                    "message": f"No submission found: {result.no_submission}. "
                    f"Files seen: {', '.join(result.seen) or 'none'}.",
                    "test_code": f"grader check {result.assignment}",
                    "filename": "",
                    "line_no": 0,
                    "execution_time": f"{result.duration:.2f}s",
                }
            ],
        }
    checks = shown_checks(result)  # the runner shows every test to the student: hidden checks stay out
    tests = [
        {
            "name": check.name,
            "status": _test_status(check.status),
            "score": check.points,
            "message": check_message(check, result.checks),
            "test_code": f"{result.assignment}::{check.id}",
            "filename": "",
            "line_no": 0,
            "execution_time": f"{check.duration:.2f}s",
        }
        for check in checks
    ]
    return {
        "version": VERSION,
        "status": "pass" if all(c.passed for c in checks) else "fail",
        "max_score": sum(c.max_points for c in checks),
        "tests": tests,
    }


def encode_runner_result(doc: dict[str, Any]) -> str:
    """Base64 of the compact UTF-8 JSON, as the reporter decodes it."""
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def write_github_output(result: SubmissionResult, output_file: str | None = None, name: str = "result") -> str:
    """Append ``result=<base64 JSON>`` to the step output file (default: ``$GITHUB_OUTPUT``); returns the value."""
    target = output_file if output_file is not None else os.environ.get("GITHUB_OUTPUT", "")
    if not target:
        raise GitHubOutputError(
            "$GITHUB_OUTPUT is not set: --github is meant to run as a step of a GitHub Actions workflow"
        )
    value = encode_runner_result(to_github_classroom(result))
    try:
        with open(Path(target), "a", encoding="utf-8") as handle:
            handle.write(f"{name}={value}\n")
    except OSError as exc:
        raise GitHubOutputError(f"cannot append to $GITHUB_OUTPUT file {target}: {exc.strerror or exc}") from None
    return value
