"""The ``submission`` a check receives: run the student's code, get evidence back.

Checks never import the student's module. They ask for a run::

    run = submission.call("main", count=4, delay=0.3, trace=["hello"])

and get a :class:`grader.evidence.run.Run` back. By default a run that did not
return normally (import error, missing function, exception, crash, timeout)
fails the check at once with a message for the student; pass
``allow_error=True`` to inspect such a run yourself.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grader.checks.expect import CheckFailed, CheckTimedOut
from grader.diagnosis import describe_hang, describe_leftovers
from grader.evidence.run import Run
from grader.inside import wire
from grader.model.assignment import Assignment
from grader.sandbox import Limits, Sandbox

__all__ = ["Submission", "SubmissionMissing", "call_label"]

STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"multiprocessing", "threading", "queue"}


class SubmissionMissing(CheckFailed):
    """The submission does not contain the file the assignment asks for."""


def call_label(func: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_short_repr(a) for a in args] + [f"{k}={_short_repr(v)}" for k, v in kwargs.items()]
    return f"{func}({', '.join(parts)})"


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Submission:
    """One student's submission for one assignment, run in sandboxes on demand."""

    def __init__(self, assignment: Assignment, path: Path, *, run_timeout: float = 20.0, limits: Limits | None = None) -> None:
        self.assignment = assignment
        self.path = Path(path)
        self.run_timeout = run_timeout
        self.runs: list[Run] = []
        if self.path.is_file():
            self.source = self.path
            self.module_path: Path | None = self.path
        else:
            self.source = self.path
            candidate = self.path / assignment.module_file
            self.module_path = candidate if candidate.is_file() else None
        self.sandbox = Sandbox(
            self.source,
            assignment.module,
            module_file=assignment.module_file,
            start_method=assignment.start_method,
            limits=limits,
            support_modules={"grader_drivers": assignment.drivers} if assignment.drivers else None,
            hide=[assignment.path],
        )

    # -- what is in the submission --------------------------------------------
    def shadowing_files(self) -> list[str]:
        """Files beside the solution named like a standard-library module (``queue.py``)."""
        if not self.path.is_dir():
            return []
        names = []
        for entry in sorted(self.path.iterdir()):
            stem = entry.stem if entry.suffix == ".py" else (entry.name if entry.is_dir() else None)
            if stem and stem in STDLIB:
                names.append(entry.name)
        return names

    def require_module(self) -> None:
        """Fail the check if the submission lacks the assignment's module file."""
        module_file = self.assignment.module_file
        if self.module_path is not None:
            shadows = self.shadowing_files()
            if shadows:
                raise CheckFailed(
                    f"your submission contains {', '.join(shadows)}, named like a module of Python's standard "
                    "library; Python imports your file instead of the real module, which breaks multiprocessing",
                    f"only {module_file} (and your own helper modules with other names)",
                    f"rename or delete {', '.join(shadows)}",
                )
            return
        if not self.path.exists():
            raise SubmissionMissing(f"the submission {self.path} does not exist", f"a folder containing {module_file}")
        found = sorted(p.name for p in self.path.iterdir() if p.suffix == ".py")[:10]
        raise SubmissionMissing(
            f"your submission has no {module_file}"
            + (f" (it holds {', '.join(found)})" if found else " (it holds no .py files)"),
            f"a file named exactly {module_file}",
            "check the file name, including upper and lower case",
        )

    # -- running ----------------------------------------------------------------
    def call(
        self,
        func: str,
        *args: Any,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
        timeout: float | None = None,
        allow_error: bool = False,
        **kwargs: Any,
    ) -> Run:
        """Call ``func(*args, **kwargs)`` of the student's module in a fresh sandbox."""
        action = {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode(kwargs)}
        return self._run(action, call_label(func, args, kwargs), trace, probes, timeout, allow_error)

    def drive(
        self,
        func: str,
        *args: Any,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
        timeout: float | None = None,
        allow_error: bool = False,
        label: str | None = None,
        **kwargs: Any,
    ) -> Run:
        """Run ``func(student_module, *args, **kwargs)`` from the assignment's ``drivers.py`` in a sandbox."""
        if self.assignment.drivers is None:
            raise RuntimeError(f"assignment {self.assignment.name} has no drivers file")
        action = {
            "kind": "driver",
            "driver_module": "grader_drivers",
            "func": func,
            "args": wire.encode(list(args)),
            "kwargs": wire.encode(kwargs),
        }
        return self._run(action, label or call_label(func, args, kwargs), trace, probes, timeout, allow_error)

    def import_module(self, *, timeout: float | None = None, allow_error: bool = False) -> Run:
        """Only import the student's module (to observe import-time side effects)."""
        return self._run({"kind": "import"}, f"import {self.assignment.module}", (), (), timeout, allow_error)

    def _run(
        self,
        action: dict[str, Any],
        label: str,
        trace: list[str] | tuple[str, ...],
        probes: list[str] | tuple[str, ...],
        timeout: float | None,
        allow_error: bool,
    ) -> Run:
        self.require_module()
        limit = min(timeout, self.run_timeout) if timeout is not None else self.run_timeout
        raw = self.sandbox.run(action, timeout=limit, trace=list(trace), probes=list(probes))
        run = Run(raw, label=label, module_file=self.assignment.module_file)
        run.timeout = limit  # type: ignore[attr-defined]
        self.runs.append(run)
        for refused in run.raw.refused[:1]:  # the evidence cannot be trusted: whatever the check allows
            raise CheckFailed(f"running {label}, {refused['observed']}", refused["expected"], refused["hint"])
        if not allow_error:
            self.require_returned(run)
        return run

    def require_returned(self, run: Run) -> None:
        """Fail the check, with a message for the student, unless the run returned normally."""
        module_file = self.assignment.module_file
        if run.import_error is not None:
            err = run.import_error
            hint = f"run `python {module_file}` yourself to see the same error, then fix the line shown"
            if err.type in ("ModuleNotFoundError", "ImportError"):
                hint = "only the standard library is available to your code; check the module name you import"
            raise CheckFailed(
                f"{module_file} could not be imported: {err.summary()}",
                f"{module_file} imports without errors",
                hint,
            )
        if run.timed_out:
            limit = getattr(run, "timeout", None)
            raise CheckTimedOut(
                f"{run.label} did not finish within {limit:g} seconds." if limit else f"{run.label} did not finish.",
                describe_hang(run, self.module_path),
            )
        if run.raw.result is None:
            status = run.raw.exit_status
            how = f"exit status {status}" if status is not None and status >= 0 else f"signal {-(status or 0)}"
            raise CheckFailed(
                f"the process running {run.label} ended ({how}) before {run.label} returned",
                f"{run.label} returns normally",
                "look for sys.exit(), os._exit() or anything that kills the process in your code",
            )
        if run.missing is not None:
            raise CheckFailed(
                f"{module_file} does not define a function named {run.missing}",
                f"a module-level function {run.missing}(...) as described in the assignment",
                "check the spelling and that it is not nested inside another function or class",
            )
        if run.error is not None:
            raise CheckFailed(
                f"{run.label} raised {run.error.summary()}",
                f"{run.label} returns normally",
                "the line shown is where the exception came from in your code",
            )

    def diagnostics(self) -> str:
        """Where the processes were stuck in this check's last run that timed out or left processes running."""
        for run in reversed(self.runs):
            if run.timed_out:
                return describe_hang(run, self.module_path)
            if run.leftovers:
                return describe_leftovers(run, self.module_path)
        return ""

    def output_text(self, limit: int = 8000) -> str:
        """Captured stdout/stderr of this check's runs, for the report."""
        parts = []
        for run in self.runs:
            chunk = []
            if run.stdout:
                chunk.append(run.stdout.rstrip("\n"))
            if run.stderr:
                chunk.append("[stderr]\n" + run.stderr.rstrip("\n"))
            if chunk:
                parts.append(f"--- {run.label} ---\n" + "\n".join(chunk))
        text = "\n".join(parts)
        if len(text) > limit:
            text = text[: limit // 2] + f"\n[... {len(text) - limit} characters cut ...]\n" + text[-limit // 2 :]
        return text
