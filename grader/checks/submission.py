"""The ``submission`` a check receives: run the student's code, get evidence back.

Runs in the pytest process. Checks never import the student's module. They
ask for a run::

    run = submission.call("main", count=4, delay=0.3, trace=["hello"])

and get a :class:`grader.evidence.Run` back. By default a run that did not
return normally (import error, missing function, exception, crash, timeout:
see :meth:`grader.evidence.Run.ending`) fails the check at once with a message
for the student; pass ``allow_error=True`` to inspect such a run yourself.
A probe name that does not exist is the assignment's mistake: it raises
:class:`grader.model.assignment.AssignmentError` before any sandbox starts. So
is a driver name that ``drivers.py`` does not define (read with :mod:`ast`
before the run, so a typo in a check is never reported as a function missing
from the student's module), and a ``drivers.py`` that fails to import.

Shared runs: a pipeline run under ``spawn`` costs a second or more (a fresh
interpreter per process). When several checks need the same run (the values
it returned, which processes ran what, whether they were joined),
:meth:`Submission.shared_call` makes it once per submission in this pytest
process and hands the same :class:`Run` to each of them
(:meth:`Submission.shared_drive` does the same for a driver). Each check still
fails on its own terms, and a run that timed out or raised fails every check
that shares it, with the same message and diagnostics, after a single timeout.
Checks that share a run must ask for exactly the same thing (function,
arguments, traced functions, probes, timeout); the key is all of those. When
checks run side by side (``--check-workers``), the first worker that needs the
run makes it and the others wait for it and take the same run
(:mod:`grader.checks.shared_runs`).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.checks.expect import CheckFailed, CheckTimedOut
from grader.checks.integrity import scan
from grader.checks.shared_runs import WorkerShare
from grader.evidence.integrity import run_flags
from grader.evidence.run import Ending, Run
from grader.evidence.schema import assignment_error, require_probes
from grader.inside import events, wire
from grader.model.assignment import Assignment, AssignmentError
from grader.model.locate import Found, other_modules, prepare_submission
from grader.model.problems import driver_names, no_such_driver
from grader.sandbox import Limits, Sandbox

__all__ = ["Submission"]

STDLIB = frozenset(getattr(sys, "stdlib_module_names", ())) | {"multiprocessing", "threading", "queue"}

_SCANS: dict[str, list[str]] = {}
"""Integrity flags of the static scan (:func:`grader.checks.integrity.scan`), once per submission path."""

_SHARED_RUNS: dict[str, Run] = {}
"""Runs made by :meth:`Submission.shared_call` / :meth:`Submission.shared_drive` in this process, by key."""

_WORKERS: WorkerShare | None = None
"""The shared runs of this grading's other check workers (:mod:`grader.checks.shared_runs`), when there are some."""

_FOUND: dict[tuple[str, str], Found] = {}
"""Where each submission's module was found (and staged) in this process, by path and module file."""


def _unpack(archive: Path, dest: Path) -> object:
    from grader.grading.archives import unpack_student_zip  # the safe extractor (stdlib only), as the controller uses it

    return unpack_student_zip(archive, dest)


def find_module(assignment: Assignment, path: Path) -> Found:
    """The module of the submission at ``path`` (:func:`grader.model.locate.prepare_submission`), once per process.

    ``grader check`` and ``grader grade`` hand pytest a submission whose module already
    sits at its top; given anything else (``pytest --submission lab2/``), the module is
    found the same way and staged in a temporary folder removed when pytest exits.
    """
    key = (str(path), assignment.module_file)
    found = _FOUND.get(key)
    if found is None:
        workdir = Path(tempfile.mkdtemp(prefix="grader-submission-"))
        found = prepare_submission(path, assignment.module_file, workdir / "w", unpack=_unpack, others=other_modules(assignment))
        if any(workdir.iterdir()):
            atexit.register(shutil.rmtree, workdir, True)
        else:
            workdir.rmdir()
        _FOUND[key] = found
    return found


def _call_label(func: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = [_short_repr(a) for a in args] + [f"{k}={_short_repr(v)}" for k, v in kwargs.items()]
    return f"{func}({', '.join(parts)})"


def _traced(trace: list[str] | tuple[str, ...], watch: list[str] | tuple[str, ...]) -> list[str]:
    """The scenario's ``trace`` list: traced names, then watched ones marked with :data:`events.WATCH_MARK`."""
    for names, option in ((trace, "trace"), (watch, "watch")):
        if isinstance(names, str):
            raise assignment_error(f"{option}= takes a list of names, not the string {names!r}")
    return [*trace, *(f"{events.WATCH_MARK}{name}" for name in watch)]


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
        self.found = find_module(assignment, self.path)
        self.source = self.found.path if self.found.ok and self.found.path is not None else self.path
        self.module_path: Path | None = self.found.module if self.found.ok else None
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
        if not self.source.is_dir():
            return []
        names = []
        for entry in sorted(self.source.iterdir()):
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
            raise CheckFailed(f"the submission {self.path} does not exist", f"a folder containing {module_file}")
        seen = self.found.seen
        raise CheckFailed(
            f"no submission found: {self.found.problem}"
            + (f" (files seen: {', '.join(seen)})" if seen else ""),
            f"a file named {module_file}, or one file that can only be it",
            "check the file's name and that only one version of it is in the submission",
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
        watch: list[str] | tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Run:
        """Call ``func(*args, **kwargs)`` of the student's module in a fresh sandbox.

        ``trace`` names functions (``"hello"``) and methods (``"Buffer.get"``) whose calls are recorded;
        ``watch`` classes (``"Buffer"``) or attributes (``"Buffer.items"``) whose instance attributes'
        reads and writes are recorded with the locks held (see :mod:`grader.evidence.locks`).
        """
        action = {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode(kwargs)}
        return self._run(action, _call_label(func, args, kwargs), _traced(trace, watch), probes, timeout, allow_error)

    def drive(
        self,
        func: str,
        *args: Any,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
        timeout: float | None = None,
        allow_error: bool = False,
        label: str | None = None,
        watch: list[str] | tuple[str, ...] = (),
        **kwargs: Any,
    ) -> Run:
        """Run ``func(student_module, *args, **kwargs)`` from the assignment's ``drivers.py`` in a sandbox."""
        self.require_driver(func)
        action = {
            "kind": "driver",
            "driver_module": "grader_drivers",
            "func": func,
            "args": wire.encode(list(args)),
            "kwargs": wire.encode(kwargs),
        }
        return self._run(
            action, label or _call_label(func, args, kwargs), _traced(trace, watch), probes, timeout, allow_error
        )

    def require_driver(self, func: str) -> None:
        """Raise :class:`AssignmentError` unless the assignment's ``drivers.py`` defines ``func`` (nothing runs)."""
        drivers = self.assignment.drivers
        if drivers is None:
            raise assignment_error(
                f"the check calls the driver {func!r}, but assignment.toml names no drivers file "
                '(add drivers = "drivers.py" to its [assignment] table)'
            )
        try:
            names = driver_names(drivers)
        except SyntaxError as exc:
            what = f"SyntaxError: {exc.msg}"
            where = f"{drivers.name} line {exc.lineno}"
            raise AssignmentError(f"{where}: {what}", file=drivers.name, line=exc.lineno, what=what) from None
        except (OSError, ValueError) as exc:
            raise assignment_error(f"{drivers.name} could not be read: {exc}") from None
        if func in names:
            return
        raise assignment_error(no_such_driver(func, drivers))

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
        require_probes(probes)
        self.require_module()
        limit = min(timeout, self.run_timeout) if timeout is not None else self.run_timeout
        raw = self.sandbox.run(action, timeout=limit, trace=list(trace), probes=list(probes))
        run = Run(raw, label=label, module_file=self.assignment.module_file, timeout=limit)
        self.runs.append(run)
        _log_run(action, label)
        for refused in run.raw.refused[:1]:  # the evidence cannot be trusted: whatever the check allows
            raise CheckFailed(f"running {label}, {refused['observed']}", refused["expected"], refused["hint"])
        if action["kind"] == "driver":
            self._require_driver_ran(run, action["func"])
        if not allow_error:
            self.require_returned(run)
        return run

    def _require_driver_ran(self, run: Run, func: str) -> None:
        """Raise :class:`AssignmentError` if ``drivers.py`` failed to import in the sandbox or ``func`` was no function there."""
        name = self.assignment.drivers.name if self.assignment.drivers else "drivers.py"
        call = (run.raw.result or {}).get("call")
        error = call.get("driver_error") if isinstance(call, dict) else None
        if isinstance(error, dict):
            line = None
            for frame in error.get("frames") or []:
                if isinstance(frame, dict) and str(frame.get("file", "")).endswith("grader_drivers.py"):
                    line = frame.get("line") if isinstance(frame.get("line"), int) else line
            what = f"{name} failed to import in the sandbox: {error.get('type')}: {str(error.get('message'))[:300]}"
            raise AssignmentError(f"{name} line {line}: {what}", file=name, line=line, what=what)
        if run.missing is not None:
            raise assignment_error(f"{name} defines {func!r}, but it is not a function when {name} runs in the sandbox")

    def require_returned(self, run: Run) -> None:
        """Fail the check, with a message for the student, unless the run returned normally."""
        ending = run.ending()
        if ending is None:
            return
        if ending.kind == Ending.TIMED_OUT:
            from grader.diagnosis import describe_hang  # imported when a run hung: most gradings never need it

            raise CheckTimedOut(ending.observed, describe_hang(run, self.module_path))
        raise CheckFailed(ending.observed, ending.expected, ending.hint)

    # -- one run shared by several checks -----------------------------------------
    def shared_call(
        self,
        func: str,
        *args: Any,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
        timeout: float | None = None,
        watch: list[str] | tuple[str, ...] = (),
        allow_error: bool = False,
        **kwargs: Any,
    ) -> Run:
        """``call(func, *args, ...)``, run once for every check that asks for the same call.

        Like ``call``: a run that did not return normally fails the check (each
        check sharing it), unless this check passes ``allow_error=True`` to judge
        such a run itself. Whether errors are allowed is not part of what is
        shared: checks asking for the same call get the same run either way.
        """
        options = {"kwargs": kwargs, "trace": sorted(_traced(trace, watch)), "probes": sorted(probes), "timeout": timeout}
        return self._shared(
            self._share_key("call", func, args, options),
            lambda: self.call(
                func, *args, trace=trace, probes=probes, timeout=timeout, allow_error=True, watch=watch, **kwargs
            ),
            allow_error,
        )

    def shared_drive(
        self,
        func: str,
        *args: Any,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
        timeout: float | None = None,
        label: str | None = None,
        watch: list[str] | tuple[str, ...] = (),
        allow_error: bool = False,
        **kwargs: Any,
    ) -> Run:
        """``drive(func, *args, ...)`` (a driver of the assignment), run once for every check that asks for it."""
        options = {"kwargs": kwargs, "trace": sorted(_traced(trace, watch)), "probes": sorted(probes), "timeout": timeout}
        return self._shared(
            self._share_key("drive", func, args, options),
            lambda: self.drive(
                func, *args, trace=trace, probes=probes, timeout=timeout, allow_error=True, label=label, watch=watch,
                **kwargs,
            ),
            allow_error,
        )

    def _share_key(self, kind: str, func: str, args: tuple[Any, ...], options: dict[str, Any]) -> str:
        return json.dumps(
            [str(self.path), self.assignment.name, kind, func, wire.encode(list(args)), wire.encode(options)],
            sort_keys=True,
        )

    def _shared(self, key: str, make: Callable[[], Run], allow_error: bool) -> Run:
        run = _SHARED_RUNS.get(key)
        before = len(self.runs)  # make() adds the run it makes to self.runs
        if run is None:
            run = _WORKERS.run_once(key, make) if _WORKERS is not None else make()
            _SHARED_RUNS[key] = run
        if len(self.runs) == before:  # made earlier, here or by another check worker
            self.runs.append(run)
        if not allow_error:
            self.require_returned(run)
        return run

    # -- can the evidence be trusted? ---------------------------------------------
    def static_flags(self) -> list[str]:
        """What the static scan of every ``.py`` file of the submission flagged (scanned once per process)."""
        key = str(self.path)
        if key not in _SCANS:
            _SCANS[key] = scan(self.path) if self.path.exists() else []
        return list(_SCANS[key])

    def integrity_flags(self) -> list[str]:
        """Integrity flags of this check: the static scan's and each run's (none when no run was made)."""
        if not self.runs:
            return []
        flags = self.static_flags()
        for run in self.runs:
            flags.extend(run_flags(run))
        return list(dict.fromkeys(flags))

    def diagnostics(self) -> str:
        """Where the processes were stuck in this check's last run that timed out or left processes running."""
        from grader.diagnosis import describe_hang, describe_leftovers  # only for a check that failed

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


RUN_LOG = "GRADER_RUN_LOG"
"""Environment variable: a file to which every sandbox run of a check appends its action, one JSON line each
(``benchmarks/cpu_floor.py`` runs the same calls bare, without the grader, to find the floor of a grading's CPU)."""


def share_with_workers(share: WorkerShare | None) -> None:
    """Make the shared runs of this process with the other check workers of its grading (``None``: alone)."""
    global _WORKERS
    _WORKERS = share


def _log_run(action: dict[str, Any], label: str) -> None:
    path = os.environ.get(RUN_LOG)
    if not path:
        return
    line = json.dumps({"action": {k: v for k, v in action.items() if k != "driver_module"}, "label": label})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
