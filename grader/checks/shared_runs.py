"""One sandbox run shared by several checks that judge different parts of its evidence.

A pipeline run under ``spawn`` costs a second or more (a fresh interpreter per
process). When several checks need the same run (the values it returned, which
processes ran what, whether they were joined), :func:`shared_call` makes it
once per submission in this pytest process and hands the same :class:`Run` to
each of them (:func:`shared_drive` does the same for a driver). Each check still fails on its own terms, and a run that timed
out or raised fails every check that shares it, with the same message and
diagnostics, after a single timeout.

Checks that share a run must ask for exactly the same thing (function,
arguments, traced functions, probes, timeout); the key is all of those. The
cache lives in the pytest process: when checks run side by side
(``--check-workers``), each worker that gets one of the sharing checks makes
the run once itself (pytest-xdist's ``--dist loadgroup`` could keep them on one
worker, but it does not group on pytest 9.2: pytest-xdist issue #1386).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from grader.checks.submission import Submission
from grader.evidence.run import Run
from grader.inside import wire

__all__ = ["shared_call", "shared_drive"]

_RUNS: dict[str, Run] = {}


def _key(submission: Submission, kind: str, func: str, args: tuple[Any, ...], options: dict[str, Any]) -> str:
    return json.dumps(
        [str(submission.path), submission.assignment.name, kind, func, wire.encode(list(args)), wire.encode(options)],
        sort_keys=True,
    )


def _shared(submission: Submission, key: str, make: Callable[[], Run]) -> Run:
    run = _RUNS.get(key)
    if run is None:
        run = make()
        _RUNS[key] = run
    else:
        submission.runs.append(run)
    submission.require_returned(run)
    return run


def shared_call(
    submission: Submission,
    func: str,
    *args: Any,
    trace: list[str] | tuple[str, ...] = (),
    probes: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    **kwargs: Any,
) -> Run:
    """``submission.call(func, *args, ...)``, run once for every check that asks for the same call.

    Like ``call`` without ``allow_error``: a run that did not return normally
    fails the check (each check sharing it).
    """
    options = {"kwargs": kwargs, "trace": sorted(trace), "probes": sorted(probes), "timeout": timeout}
    return _shared(
        submission,
        _key(submission, "call", func, args, options),
        lambda: submission.call(func, *args, trace=trace, probes=probes, timeout=timeout, allow_error=True, **kwargs),
    )


def shared_drive(
    submission: Submission,
    func: str,
    *args: Any,
    trace: list[str] | tuple[str, ...] = (),
    probes: list[str] | tuple[str, ...] = (),
    timeout: float | None = None,
    label: str | None = None,
    **kwargs: Any,
) -> Run:
    """``submission.drive(func, *args, ...)`` (a driver of the assignment), run once for every check that asks for it."""
    options = {"kwargs": kwargs, "trace": sorted(trace), "probes": sorted(probes), "timeout": timeout}
    return _shared(
        submission,
        _key(submission, "drive", func, args, options),
        lambda: submission.drive(
            func, *args, trace=trace, probes=probes, timeout=timeout, allow_error=True, label=label, **kwargs
        ),
    )
