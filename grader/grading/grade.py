"""Grade one submission: run an assignment's checks with pytest in a child process.

The checks run in their own ``pytest`` process so that nothing of one
submission (modules, fixtures, a crash of the harness itself) carries over to
the next, and the caller only reads back the JSON result the plugin wrote.
Plugin autoloading is switched off so that whatever else is installed in the
environment cannot change a grade; the plugins the grader needs are named.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader import served
from grader.grading.archives import unpack_student_zip
from grader.grading.progress import ProgressEvent, ProgressTail
from grader.grading.warm import WarmPytest, WarmUnavailable, fork_pytest, warm_supported
from grader.model.assignment import Assignment
from grader.model.locate import Found, other_modules, prepare_submission
from grader.model.results import SubmissionResult
from grader.processes import stop_tree, wait_any, wait_process
from grader.uid_locks import UNSAFE_NOTE

__all__ = [
    "Budget",
    "StopEarly",
    "available_cpus",
    "default_check_workers",
    "grade_submission",
    "no_submission_result",
    "warm_grading",
]

PYTEST_MARGIN = 30.0
START_ALLOWANCE = 120.0
"""Seconds pytest may take to start and collect the checks, before they report their own budget."""
STOP_GRACE = 15.0
"""Seconds a grading stopped at its budget has to kill and clean its sandboxes before it is killed."""
SANDBOXES_PER_CPU = 1
"""Sandboxes running at once per CPU when the number of check workers is left to the grader.

Check workers are only added while submissions graded at once leave CPUs free:
each xdist worker is one more interpreter importing pytest and the grader
(0.7-0.9 s of CPU), so on a busy machine parallel submissions (``-j``) are
cheaper than parallel checks. Measured in docs/scale.md: a 24-student class with
``-j 2`` on 2 loaded CPUs took 385 s with 1 check worker and 540 s with 2."""


@dataclass(frozen=True)
class StopEarly:
    """A grading that only asks whether a submission loses points: it stops at the first check that does.

    ``first`` (check ids) run before the others, in that order: the checks expected to take points
    (``grader mutants`` names those that took them on a mutant's first run). A grading where no
    check loses points still grades every check. Its result holds only the checks that ran, and a
    note says it stopped; it is no student's grade. Run with one check worker: side by side, the
    checks already handed to xdist workers would all run to their end.
    """

    first: tuple[str, ...] = ()

    def options(self) -> list[str]:
        """pytest's options for it."""
        return ["--maxfail=1", *([f"--grader-first={','.join(self.first)}"] if self.first else [])]


class Budget:
    """How long one grading's pytest process may run, derived from the checks' own time limits.

    Until the checks are collected, pytest has :data:`START_ALLOWANCE` seconds. Then the plugin
    writes the sum of the collected checks' time limits plus each check's overhead
    (``--grader-budget``), and the deadline becomes the time of that report plus that sum plus
    :data:`PYTEST_MARGIN`: a grading whose every check runs into its limit, one after another,
    still ends by itself. A fixed ``seconds`` (``grade_submission(timeout=...)``) replaces both.
    """

    def __init__(self, report: Path, seconds: float | None = None) -> None:
        self.report = report
        self.started = time.monotonic()
        self.fixed = seconds
        self.deadline = self.started + (seconds if seconds is not None else START_ALLOWANCE)
        self.checks_seconds: float | None = None

    def remaining(self) -> float:
        """Seconds left now (at most 0 once the budget ran out)."""
        if self.fixed is None and self.checks_seconds is None:
            self._read_report()
        return max(0.0, self.deadline - time.monotonic())

    def _read_report(self) -> None:
        try:
            data = json.loads(self.report.read_text(encoding="utf-8"))
            seconds = float(data["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return
        if seconds >= 0:
            self.checks_seconds = seconds
            self.deadline = time.monotonic() + seconds + PYTEST_MARGIN

    def collected(self) -> int | None:
        """How many checks pytest collected (the plugin's report), ``None`` before it wrote one."""
        try:
            return int(json.loads(self.report.read_text(encoding="utf-8"))["checks"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        """The budget in words, for a grading that ran out of it."""
        if self.fixed is not None:
            return f"{self.fixed:g} s"
        if self.checks_seconds is None:
            return f"{START_ALLOWANCE:g} s to start pytest and collect the checks"
        return f"{self.checks_seconds + PYTEST_MARGIN:g} s (the checks' time limits, their overhead and a margin)"


def _check_count(assignment: Assignment) -> int:
    count = 0
    for path in sorted(assignment.path.glob("test_*.py")):
        try:
            count += path.read_text(encoding="utf-8").count("\ndef test_")
        except OSError:
            continue
    return max(1, count)


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text(encoding="ascii").split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(int(quota) / int(period) + 0.5)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def default_check_workers(jobs: int = 1, cpus: int | None = None) -> int:
    """Checks of one submission run side by side when ``jobs`` submissions are graded at once.

    Sized so that ``jobs * workers`` (the sandboxes running at the same time) is
    about :data:`SANDBOXES_PER_CPU` per CPU, at least one: ``grader check`` on two
    CPUs runs 2 checks at a time, ``grader grade -j 2`` on two CPUs one (no xdist
    at all), on eight CPUs 4.
    """
    cpus = cpus or available_cpus()
    return max(1, (SANDBOXES_PER_CPU * cpus) // max(1, jobs))


def pytest_command(
    assignment: Assignment,
    submission: Path,
    results: Path,
    student: str = "",
    check_workers: int = 1,
    budget: Path | None = None,
    unsafe: bool = False,
    progress: Path | None = None,
    stop_early: StopEarly | None = None,
    first: Sequence[str] = (),
) -> list[str]:
    """The pytest command line that grades ``submission``, ``check_workers`` checks at a time.

    ``unsafe`` (``--unsafe-no-sandbox``) lets student code run as root where the sandbox cannot
    drop to a uid of its own (:mod:`grader.plugin`'s ``--grader-unsafe-no-sandbox``).
    ``stop_early``: stop at the first check that loses points (:class:`StopEarly`).
    ``first``: check ids that start first, in that order, where the checks run side by side
    (``--grader-first``; :func:`grader.grading.timings.plan`)."""
    return [
        sys.executable,
        "-m",
        "grader.pytest_process",  # pytest, its check workers forked warm
        str(assignment.path),
        f"--submission={submission}",
        f"--grader-results={results}",
        f"--grader-student={student}",
        *([f"--grader-budget={budget}"] if budget is not None else []),
        *([f"--grader-progress={progress}"] if progress is not None else []),
        "-p",
        "grader.plugin",
        "-p",
        "pytest_timeout",
        "-p",
        "no:cacheprovider",
        # it ends the process with full garbage collections (two from pytest 8.4), about a sixth of the pytest
        # process's own CPU, to turn a __del__'s exception into a warning no grade reads (Python prints it in the log)
        "-p",
        "no:unraisableexception",
        "-c",
        os.devnull,
        f"--rootdir={assignment.path}",
        # no conftest.py above the assignment's folder: pytest would look for one in every folder up to /
        f"--confcutdir={assignment.path}",
        f"--basetemp={results.parent / 'basetemp'}",  # pytest-xdist makes one; it goes with the results' folder
        "--import-mode=importlib",
        "-q",
        "--no-header",
        # a check's failure is the student's (CheckFailed), reported from the result: pytest's long traceback
        # of it, which parses the check's source for every frame, is not read; a crash keeps Python's own
        "--tb=native",
        "-o",
        "console_output_style=classic",
        # grader.pytest_process imports the plugins before pytest does, so that its check workers fork warm
        "-W",
        "ignore:Module already imported so cannot be rewritten:pytest.PytestAssertRewriteWarning",
        *_how_checks_run(check_workers, unsafe, stop_early, first),
    ]


def _how_checks_run(check_workers: int, unsafe: bool, stop_early: StopEarly | None, first: Sequence[str]) -> list[str]:
    """:func:`pytest_command`'s options for how many checks run at a time, as whom, and which first."""
    options = ["-p", "xdist.plugin", "-n", str(check_workers)] if check_workers > 1 else []
    if unsafe:
        options.append("--grader-unsafe-no-sandbox")
    if stop_early is not None:
        options.extend(stop_early.options())
    elif first and check_workers > 1:
        options.append(f"--grader-first={','.join(first)}")
    return options


BYTECODE_CACHE_ENV = "GRADER_BYTECODE_CACHE"
"""Folder for the bytecode of the grader's own processes, or ``off``; default ``~/.cache/concurrency-grader/pycache``."""


def bytecode_cache() -> str | None:
    """The folder where the trusted processes of a grading keep compiled bytecode, or ``None`` for none.

    A grading starts several interpreters that import pytest, its plugins, the grader and the
    assignment's checks. Where no bytecode was written beside those sources (an editable install,
    ``PYTHONDONTWRITEBYTECODE`` in the environment), each would compile them again: about 0.3 s of CPU
    per interpreter. They keep it instead in a folder of their own (``PYTHONPYCACHEPREFIX``), never
    beside an assignment's or a submission's files. The folder must belong to this user and be
    writable by nobody else (nobody may put bytecode there that the grader would run); otherwise, or
    with ``GRADER_BYTECODE_CACHE=off``, nothing is cached. Student code never uses it: sandboxes run
    with ``PYTHONDONTWRITEBYTECODE`` and a private file system.
    """
    chosen = os.environ.get(BYTECODE_CACHE_ENV, "")
    if chosen.lower() == "off":
        return None
    if not chosen:
        cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        chosen = os.path.join(cache_home, "concurrency-grader", "pycache")
    try:
        os.makedirs(chosen, mode=0o700, exist_ok=True)
        info = os.stat(chosen)
    except OSError:
        return None
    if hasattr(os, "geteuid") and (info.st_uid != os.geteuid() or info.st_mode & 0o022):
        return None
    return os.path.abspath(chosen)


def pytest_environment() -> dict[str, str]:
    """The environment of a grading's pytest process: no plugin autoloading, no PYTEST_ADDOPTS.

    Its bytecode goes to :func:`bytecode_cache`, or nowhere.
    """
    env = dict(os.environ)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    cache = bytecode_cache()
    if cache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.pop("PYTHONPYCACHEPREFIX", None)
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = cache
    return env


def warm_grading(check_workers: int = 1) -> WarmPytest | None:
    """A warm pytest process for grading many submissions (:mod:`grader.grading.warm`), or ``None`` where unsupported.

    The caller closes it (it is a context manager). Its forks run exactly the
    command line :func:`pytest_command` gives, in the environment of
    :func:`pytest_environment`.
    """
    if not warm_supported():
        return None
    extra = ("xdist.plugin", "xdist.dsession") if check_workers > 1 else ()
    try:
        return WarmPytest(pytest_environment(), cwd=tempfile.gettempdir(), extra_modules=extra)
    except (OSError, WarmUnavailable):
        return None


_FORK_THIS_PROCESS = False


def let_gradings_fork_this_process() -> None:
    """Let a grading without a warm process run its pytest in a fork of this process (:func:`fork_pytest`).

    For a process that is the ``grader`` command (:func:`grader.cli.main`): a grading then
    imports nothing this process has imported already, and starts no new interpreter. A fork
    carries the whole process that forks; elsewhere (a program that imports the grader, a test
    run, whose pytest may be capturing this process's output) each pytest process is a new
    interpreter.
    """
    global _FORK_THIS_PROCESS
    _FORK_THIS_PROCESS = True


def _run_pytest(
    command: list[str],
    tmp: str,
    log: Path,
    budget: Budget,
    warm: WarmPytest | None,
    on_start: Callable[[int], None] | None,
    tick: Callable[[], None] | None = None,
) -> int | None:
    """Run the grading's pytest; exit status, ``None`` past its budget.

    The pytest process is a fork of ``warm``; without one, a fork of this process where
    :func:`let_gradings_fork_this_process` allows it and :func:`fork_pytest` can make one;
    else a new interpreter.

    ``tick`` is called about four times a second while pytest runs (it reads the progress file).

    Past the budget, the pytest process and its check workers get SIGTERM, which the plugin turns
    into an interrupt: each running check kills and cleans its sandbox at once. Whatever is
    left after :data:`STOP_GRACE` seconds is killed, sandboxes included.
    """
    step = 1.0 if tick is None else 0.25

    def remaining() -> float:
        if tick is not None:
            tick()
        return budget.remaining()

    if warm is not None:
        try:  # the command without `python -m grader.pytest_process`
            return warm.run(command[3:], cwd=tmp, log=str(log), timeout=remaining, on_start=on_start, grace=STOP_GRACE)
        except WarmUnavailable:
            pass  # nothing ran: grade cold
    elif _FORK_THIS_PROCESS:  # one grading: a fork of the grader, whose imports it shares, or else a new interpreter
        sandboxes = served.start_server()  # the sandboxes' own warm interpreter, as a batch's warm process has
        try:
            env = pytest_environment()
            if sandboxes is not None:
                env[served.CHANNEL_ENV] = os.environ[served.CHANNEL_ENV]
            pid = fork_pytest(command[3:], cwd=tmp, log=str(log), env=env, keep=sandboxes.channel if sandboxes else None)
            if pid is not None:
                return _wait_fork(pid, remaining, step, on_start)
        finally:
            if sandboxes is not None:
                served.stop_server(sandboxes)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=pytest_environment(), cwd=tmp
        )
        if on_start is not None:
            on_start(proc.pid)
        while (left := remaining()) > 0:
            try:
                return wait_process(proc, min(left, step))
            except subprocess.TimeoutExpired:
                continue
        stop_tree(proc.pid, STOP_GRACE)
        proc.wait()
        return None


def _wait_fork(pid: int, remaining: Callable[[], float], step: float, on_start: Callable[[int], None] | None) -> int | None:
    """Wait for the pytest fork of this process; its exit status, ``None`` (stopped, reaped) past its budget."""
    if on_start is not None:
        on_start(pid)
    while (left := remaining()) > 0:
        wait_any([pid], min(left, step))
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return os.waitstatus_to_exitcode(status)
    stop_tree(pid, STOP_GRACE)
    os.waitpid(pid, 0)
    return None


def _read_result(code: int | None, results: Path, log_text: str, budget: Budget) -> SubmissionResult:
    """The result the plugin wrote, or one whose ``error`` says why there is none (past the budget, none written).

    The caller fills in the assignment, student and submission.
    """
    if code is not None and results.is_file():  # past its budget, a grading's result is not trusted
        try:
            result = SubmissionResult.from_dict(json.loads(results.read_text(encoding="utf-8")))
        except (ValueError, KeyError, TypeError) as exc:
            log_text += f"\n(result file unreadable: {exc})"
        else:
            if result.error is None and not result.checks:
                result.error = "no checks ran"
                result.error_detail = log_text
            return result
    reason = (
        f"the checks did not finish within the grading's budget of {budget.describe()}"
        if code is None
        else f"pytest ended with exit code {code}"
    )
    return SubmissionResult(
        assignment="",
        student="",
        submission="",
        error=f"the grader could not run the checks: {reason}",
        error_detail=log_text,
    )


def grade_submission(
    assignment: Assignment,
    submission: Path,
    *,
    student: str = "",
    timeout: float | None = None,
    check_workers: int = 1,
    warm: WarmPytest | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    others: Sequence[str] | None = None,
    unsafe: bool = False,
    stop_early: StopEarly | None = None,
    first: Sequence[str] = (),
) -> SubmissionResult:
    """Grade ``submission`` with ``assignment``'s checks; never raises for student mistakes.

    The module is found first (:func:`grader.model.locate.prepare_submission`: a
    renamed, nested, zipped file or a notebook is staged under the module's name).
    When nothing gradable is there, no check runs: the result's ``no_submission``
    says what was seen and expected. A submission that cannot be imported, hangs or
    crashes gets failed checks. A problem of the grader itself (the checks could not
    even run) gives a result whose ``error`` says so. With ``warm`` (see
    :func:`warm_grading`), the pytest process is a fork of that warm process instead
    of a new interpreter. ``on_start`` is called with the pid of the pytest process once it runs.
    ``on_progress`` is called, in this thread, with each event of the plugin's progress file
    (:mod:`grader.grading.progress`: checks collected, started, finished) soon after it happens.
    ``others`` are other assignments' module files (default: :func:`grader.model.locate.other_modules`),
    so a lone file of another assignment is not graded as this one's. ``unsafe``: see
    :func:`pytest_command`; the result then says so (``SubmissionResult.unsafe``). ``stop_early``:
    stop at the first check that loses points (:class:`StopEarly`); the result's notes then say so.
    ``first``: check ids that start first where the checks run side by side (:func:`pytest_command`).
    """
    submission = Path(submission).resolve()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-grade-") as tmp:
        found = prepare_submission(
            submission, assignment.module_file, Path(tmp) / "submission", unpack=unpack_student_zip,
            others=other_modules(assignment) if others is None else others,
        )
        if not found.ok or found.path is None:
            result = no_submission_result(assignment, found, student=student, submission=str(submission))
        else:
            result = _run_checks(
                assignment, found.path, Path(tmp), student, timeout, check_workers, warm, on_start, on_progress, unsafe,
                stop_early, first,
            )
            result.graded_file = found.graded_file
            result.notes = [*found.notes, *result.notes]
        result.assignment = assignment.name
        result.student = student
        result.submission = str(submission)
        result.duration = round(time.monotonic() - started, 3)
        result.python = result.python or platform.python_version()
        if unsafe and not result.unsafe:
            result.unsafe = UNSAFE_NOTE
        return result


def no_submission_result(assignment: Assignment, found: Found, *, student: str = "", submission: str = "") -> SubmissionResult:
    """The result of a submission without a gradable file: no check ran, ``no_submission`` says why."""
    return SubmissionResult(
        assignment=assignment.name,
        student=student,
        submission=submission,
        no_submission=found.problem or f"no file that could be {assignment.module_file} was found",
        seen=list(found.seen),
        protections=["no student code ran: no gradable file was found in the submission"],
    )


def _run_checks(
    assignment: Assignment,
    submission: Path,
    tmp: Path,
    student: str,
    timeout: float | None,
    check_workers: int,
    warm: WarmPytest | None,
    on_start: Callable[[int], None] | None,
    on_progress: Callable[[ProgressEvent], None] | None,
    unsafe: bool = False,
    stop_early: StopEarly | None = None,
    first: Sequence[str] = (),
) -> SubmissionResult:
    """Run the checks on ``submission`` (the module at its top) in a pytest process; read its result back."""
    results = tmp / "results.json"
    log = tmp / "pytest.log"
    workers = max(1, min(check_workers, _check_count(assignment)))
    budget = Budget(tmp / "budget.json", timeout)
    tail = ProgressTail(tmp / "progress.jsonl", on_progress) if on_progress is not None else None
    command = pytest_command(
        assignment, submission, results, student, workers, budget.report, unsafe, tail.path if tail else None, stop_early,
        first,
    )
    code = _run_pytest(command, str(tmp), log, budget, warm, on_start, tail.poll if tail else None)
    if tail is not None:
        tail.poll()
    log_text = log.read_text(encoding="utf-8", errors="replace")[-8000:]
    result = _read_result(code, results, log_text, budget)
    stopped = stop_early is not None and any(not c.passed for c in result.checks)
    collected = budget.collected()
    if stopped:
        result.notes.append(
            f"graded to the first check that lost points only ({len(result.checks)} graded): not a full grading"
        )
    elif result.graded and collected is not None and len(result.checks) < collected:
        result.error = (  # a score over some of the checks is no grade: full marks on 9 of 14 points is not 14/14
            f"the grader could not run the checks: pytest ended with exit code {code} after {len(result.checks)} "
            f"of the {collected} checks; a grade needs every check's result (the pytest log shows where it stopped; "
            "grade the submission again)"
        )
        result.error_detail = log_text
    return result
