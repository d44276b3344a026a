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
from collections.abc import Callable
from pathlib import Path

from grader.grading.warm import WarmPytest, WarmUnavailable, warm_supported
from grader.model.assignment import Assignment
from grader.model.results import SubmissionResult
from grader.processes import stop_tree, wait_process
from grader.uid_locks import UNSAFE_NOTE

__all__ = ["Budget", "available_cpus", "default_check_workers", "grade_submission", "warm_grading"]

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
) -> list[str]:
    """The pytest command line that grades ``submission``, ``check_workers`` checks at a time.

    ``unsafe`` (``--unsafe-no-sandbox``) lets student code run as root where the sandbox cannot
    drop to a uid of its own (:mod:`grader.plugin`'s ``--grader-unsafe-no-sandbox``)."""
    parallel = ["-p", "xdist.plugin", "-n", str(check_workers)] if check_workers > 1 else []
    if unsafe:
        parallel.append("--grader-unsafe-no-sandbox")
    return [
        sys.executable,
        "-m",
        "pytest",
        str(assignment.path),
        f"--submission={submission}",
        f"--grader-results={results}",
        f"--grader-student={student}",
        *([f"--grader-budget={budget}"] if budget is not None else []),
        "-p",
        "grader.plugin",
        "-p",
        "pytest_timeout",
        "-p",
        "no:cacheprovider",
        "-c",
        os.devnull,
        f"--rootdir={assignment.path}",
        f"--basetemp={results.parent / 'basetemp'}",  # pytest-xdist makes one; it goes with the results' folder
        "--import-mode=importlib",
        "-q",
        "--no-header",
        "-o",
        "console_output_style=classic",
        *parallel,
    ]


def pytest_environment() -> dict[str, str]:
    """The environment of a grading's pytest process: no plugin autoloading, no PYTEST_ADDOPTS."""
    env = dict(os.environ)
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
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


def _run_pytest(
    command: list[str],
    tmp: str,
    log: Path,
    budget: Budget,
    warm: WarmPytest | None,
    on_start: Callable[[int], None] | None,
) -> int | None:
    """Run the grading's pytest (a fork of ``warm``, else a new process); exit status, ``None`` past its budget.

    Past the budget, the pytest process and its check workers get SIGTERM, which the plugin turns
    into an interrupt: each running check kills and cleans its sandbox at once. Whatever is
    left after :data:`STOP_GRACE` seconds is killed, sandboxes included.
    """
    if warm is not None:
        try:  # the command without `python -m pytest`
            return warm.run(command[3:], cwd=tmp, log=str(log), timeout=budget.remaining, on_start=on_start, grace=STOP_GRACE)
        except WarmUnavailable:
            pass  # nothing ran: grade cold
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=pytest_environment(), cwd=tmp
        )
        if on_start is not None:
            on_start(proc.pid)
        while (left := budget.remaining()) > 0:
            try:
                return wait_process(proc, min(left, 1.0))
            except subprocess.TimeoutExpired:
                continue
        stop_tree(proc.pid, STOP_GRACE)
        proc.wait()
        return None


def grade_submission(
    assignment: Assignment,
    submission: Path,
    *,
    student: str = "",
    timeout: float | None = None,
    check_workers: int = 1,
    warm: WarmPytest | None = None,
    on_start: Callable[[int], None] | None = None,
    unsafe: bool = False,
) -> SubmissionResult:
    """Grade ``submission`` with ``assignment``'s checks; never raises for student mistakes.

    A submission that cannot be imported, hangs or crashes gets failed checks. A
    problem of the grader itself (the checks could not even run) gives a result
    whose ``error`` says so. With ``warm`` (see :func:`warm_grading`), the pytest
    process is a fork of that warm process instead of a new interpreter.
    ``on_start`` is called with the pid of the pytest process once it runs. ``unsafe``: see
    :func:`pytest_command`; the result then says so (``SubmissionResult.unsafe``).
    """
    submission = Path(submission).resolve()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-grade-") as tmp:
        results = Path(tmp) / "results.json"
        log = Path(tmp) / "pytest.log"
        workers = max(1, min(check_workers, _check_count(assignment)))
        budget = Budget(Path(tmp) / "budget.json", timeout)
        command = pytest_command(assignment, submission, results, student, workers, budget.report, unsafe)
        code = _run_pytest(command, tmp, log, budget, warm, on_start)
        log_text = log.read_text(encoding="utf-8", errors="replace")[-8000:]
        result = None
        if code is not None and results.is_file():  # past its budget, a grading's result is not trusted
            try:
                result = SubmissionResult.from_dict(json.loads(results.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                log_text += f"\n(result file unreadable: {exc})"
        if result is None:
            reason = (
                f"the checks did not finish within the grading's budget of {budget.describe()}"
                if code is None
                else f"pytest ended with exit code {code}"
            )
            result = SubmissionResult(
                assignment=assignment.name,
                student=student,
                submission=str(submission),
                error=f"the grader could not run the checks: {reason}",
                error_detail=log_text,
            )
        elif result.error is None and not result.checks:
            result.error = "no checks ran"
            result.error_detail = log_text
        result.assignment = assignment.name
        result.student = student
        result.submission = str(submission)
        result.duration = round(time.monotonic() - started, 3)
        result.python = result.python or platform.python_version()
        if unsafe and not result.unsafe:
            result.unsafe = UNSAFE_NOTE
        return result
