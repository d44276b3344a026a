"""The pytest plugin: grade a submission with an assignment's checks. Runs in the pytest process.

Registered through the ``pytest11`` entry point, it is inert until pytest
collects tests inside an assignment folder (one holding ``assignment.toml``).
Then:

- ``--submission PATH`` (a ``.py`` file or a folder) is required, and the
  ``submission`` fixture gives each check a :class:`grader.checks.Submission`;
- ``@pytest.mark.points(n)`` and ``@pytest.mark.visibility(v)`` mark each check
  (the assignment's ``[checks.NAME]`` config overrides them);
- every check gets a pytest-timeout limit (marker, else config, else the
  assignment's default), and each sandbox run inside it a deadline that ends
  a few seconds earlier so the check can report what it saw;
- each report carries the grading of its check as plain data, which the
  controller (never an xdist worker) collects into a
  :class:`grader.model.results.SubmissionResult`, prints as a score line and, with
  ``--grader-results PATH``, writes as JSON; with ``--grader-progress PATH`` it
  also appends one JSON line per started and per finished check to PATH while
  the checks run (the live lines of ``grader check``);
- with check workers (pytest-xdist), a run that several checks share is made
  once for all the workers (:mod:`grader.checks.shared_runs`);
- a mistake of the assignment itself is the instructor's, never the
  student's: a bad ``assignment.toml`` at collection; a check file that fails
  to import (its collection error becomes one short block naming the file and
  line, not pytest's traceback); an
  :class:`~grader.model.assignment.AssignmentError` raised by a check (a probe
  or driver that does not exist, a ``drivers.py`` that fails to import); an
  exception raised by a check's own code (a ``NameError`` in the check file,
  not a :class:`~grader.checks.CheckFailed`). The check's message says so, the
  result's ``error`` says the assignment is broken, so the submission is not
  graded on it, and ``metadata["assignment_errors"]`` holds the blocks
  (:mod:`grader.model.problems`).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import signal
import time
import traceback
from pathlib import Path
from typing import Any

import pytest

from grader.checks import CheckFailed, CheckTimedOut, Submission
from grader.checks.shared_runs import WorkerShare
from grader.checks.submission import find_module, share_with_workers
from grader.exporters.files import write_atomic
from grader.model.assignment import Assignment, AssignmentError, assignment_for
from grader.model.problems import BROKEN, PROBLEMS_KEY, AssignmentProblem, problem_from_exception, source_line
from grader.model.results import CheckResult, Status, SubmissionResult
from grader.sandbox import safe_text
from grader.sandbox.containment import SandboxRefused
from grader.uid_locks import UNSAFE_NOTE

GRADE_KEY = "grader"
START_KEY = "grader-start"
ASSIGNMENT_ERROR_KEY = "grader-assignment-error"
RUN_MARGIN = 3.0
CHECK_OVERHEAD = 8.0
"""Seconds a check may take beyond its time limit: starting its sandbox, dumping stacks of a hang, killing."""
OUTPUT_LIMIT = 8000
_ASSIGNMENT = pytest.StashKey[Assignment]()
_SUBMISSION = pytest.StashKey[Submission]()
_GRADED_ASSIGNMENT = pytest.StashKey[Assignment]()
_GRADER_DIR = Path(__file__).resolve().parent
PROBLEM_PREFIX = "assignment error: "


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "concurrency-grader")
    group.addoption(
        "--submission",
        metavar="PATH",
        help="the student's submission to grade: a .py file or a folder holding the assignment's module.",
    )
    group.addoption(
        "--grader-results",
        metavar="PATH",
        help="write the graded result (the grader's own JSON result model) to PATH.",
    )
    group.addoption("--grader-student", metavar="NAME", default="", help="the student's name, recorded in the result.")
    group.addoption(
        "--grader-unsafe-no-sandbox",
        action="store_true",
        default=False,
        help="as root, run student code even where the sandbox cannot drop to a uid of its own (said in every report).",
    )
    group.addoption(
        "--grader-budget",
        metavar="PATH",
        help="once the checks are collected, write to PATH how long they may take in all (the sum of their time "
        "limits plus each check's overhead), and end cleanly on SIGTERM: the controller's budget for this grading.",
    )
    group.addoption(
        "--grader-progress",
        metavar="PATH",
        help="append one JSON line to PATH when the checks are collected, when each check starts and when it "
        "finishes (its name, status and points), as they happen.",
    )
    group.addoption(
        "--grader-first",
        metavar="IDS",
        default="",
        help="run the checks named in IDS (comma-separated check ids) before the others, in that order; with "
        "--maxfail 1, a grading that only asks whether the submission loses points stops at the first that does.",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): the points a check is worth (default 1).")
    config.addinivalue_line(
        "markers", "visibility(v): who sees a check: visible, hidden, after_due_date or after_published."
    )
    if hasattr(config, "workerinput"):
        share_with_workers(WorkerShare.from_workerinput(config.workerinput))
    else:
        config.pluginmanager.register(ResultCollector(config), "grader-results-collector")
        if config.getoption("grader_progress", None):
            config.pluginmanager.register(ProgressWriter(config.getoption("grader_progress")), "grader-progress")
    if config.getoption("grader_budget", None):
        signal.signal(signal.SIGTERM, _stop_on_sigterm)


_SHARE = pytest.StashKey[WorkerShare]()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: every check worker gets the grading's folder and key of shared runs."""
    share = node.config.stash.get(_SHARE, None)
    if share is None:
        share = node.config.stash[_SHARE] = WorkerShare.create()
    node.workerinput.update(share.workerinput())


def pytest_unconfigure(config: pytest.Config) -> None:
    share = config.stash.get(_SHARE, None)
    if share is not None:
        share.remove()


def _stop_on_sigterm(signum: int, frame: object) -> None:
    """The controller's budget ran out: stop like Ctrl-C, so every running sandbox is killed and cleaned now."""
    raise KeyboardInterrupt("the grading's time budget ran out")


def _check_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name


def _marker_value(item: pytest.Item, name: str) -> Any:
    marker = item.get_closest_marker(name)
    if marker is None:
        return None
    if marker.args:
        return marker.args[0]
    return next(iter(marker.kwargs.values()), None)


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    cache: dict[Path, Assignment | None] = {}
    graded = False
    for item in items:
        folder = Path(item.path).parent
        if folder not in cache:
            try:
                cache[folder] = assignment_for(folder)
            except AssignmentError as exc:
                raise pytest.UsageError(str(exc)) from None
        assignment = cache[folder]
        if assignment is None:
            continue
        graded = True
        item.stash[_ASSIGNMENT] = assignment
        config.stash[_GRADED_ASSIGNMENT] = assignment
        check = assignment.checks.get(_check_name(item))
        if check is not None and check.timeout is not None:
            item.add_marker(pytest.mark.timeout(check.timeout, func_only=True), append=False)
        elif item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(assignment.timeout, func_only=True))
    _run_first(items, config.getoption("grader_first", ""))
    if graded and not config.getoption("submission"):
        raise pytest.UsageError("--submission PATH is required to run an assignment's checks (a .py file or a folder)")
    budget = config.getoption("grader_budget", None)
    if budget and graded:
        seconds = sum(_timeout_of(item) + CHECK_OVERHEAD for item in items if _ASSIGNMENT in item.stash)
        write_atomic(budget, json.dumps({"checks": len(items), "seconds": round(seconds, 3)}))


def _run_first(items: list[pytest.Item], ids: str) -> None:
    """Move the checks named in ``ids`` (comma-separated) to the front, in that order; the rest keep theirs."""
    order = {name: rank for rank, name in enumerate(n for n in ids.split(",") if n)}
    if order:
        items.sort(key=lambda item: order.get(_check_name(item), len(order)))  # stable: the others keep their order


def _timeout_of(item: pytest.Item) -> float:
    value = _marker_value(item, "timeout")
    try:
        return float(value) if value is not None else 30.0
    except (TypeError, ValueError):
        return 30.0


@pytest.fixture
def submission(request: pytest.FixtureRequest) -> Submission:
    """The student's submission, run in sandboxes on demand (see :class:`grader.checks.Submission`)."""
    item = request.node
    assignment = item.stash.get(_ASSIGNMENT, None)
    if assignment is None:
        assignment = assignment_for(Path(item.path).parent)
        if assignment is None:
            raise pytest.UsageError("the submission fixture is only available to checks inside an assignment folder")
    path = request.config.getoption("submission")
    if not path:
        raise pytest.UsageError("--submission PATH is required to run an assignment's checks")
    run_timeout = max(1.0, _timeout_of(item) - RUN_MARGIN)
    sub = Submission(assignment, Path(path).resolve(), run_timeout=run_timeout)
    if request.config.getoption("grader_unsafe_no_sandbox"):
        sub.sandbox.isolation = dataclasses.replace(sub.sandbox.isolation, fail_closed=False)
    item.stash[_SUBMISSION] = sub
    return sub


def _points(item: pytest.Item, assignment: Assignment) -> tuple[float, str]:
    config = assignment.checks.get(_check_name(item))
    points = config.points if config and config.points is not None else _marker_value(item, "points")
    visibility = config.visibility if config and config.visibility else _marker_value(item, "visibility")
    try:
        points_value = float(points) if points is not None else 1.0
    except (TypeError, ValueError):
        raise pytest.UsageError(f"{item.nodeid}: points must be a number, got {points!r}") from None
    visibility = visibility or "visible"
    return points_value, str(visibility)


def _describe(item: pytest.Item) -> tuple[str, str]:
    doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
    lines = [line.strip() for line in doc.strip().splitlines()]
    title = lines[0] if lines and lines[0] else _check_name(item).removeprefix("test_").replace("_", " ")
    rest = " ".join(line for line in lines[1:] if line)
    return title, rest


def _assignment_problem(item: pytest.Item, assignment: Assignment, exc: BaseException) -> AssignmentProblem | None:
    """The assignment's own mistake ``exc`` shows (an :class:`AssignmentError`, a bug in the check's code), or ``None``."""
    if isinstance(exc, AssignmentError):
        if exc.file:
            return AssignmentProblem(exc.file, exc.line, exc.what, source_line(assignment.path / exc.file, exc.line))
        return AssignmentProblem(Path(item.path).name, None, f"{_check_name(item)}: {exc}")
    if not isinstance(exc, Exception) or isinstance(exc, (AssertionError, CheckTimedOut)):
        return None
    return problem_from_exception(exc, assignment.path, stop_at=_GRADER_DIR)


def _broken(problem: AssignmentProblem) -> str:
    return f"The assignment's checks are broken, not your code: tell your instructor. ({problem.where}: {problem.what})"


def _classify(call: pytest.CallInfo[None], problem: AssignmentProblem | None = None) -> tuple[Status, str, str]:
    excinfo = call.excinfo
    if excinfo is None:
        return Status.PASSED, "", ""
    exc = excinfo.value
    if problem is not None:
        return Status.ERROR, _broken(problem), ""
    if isinstance(exc, CheckTimedOut):
        return Status.TIMED_OUT, exc.message, exc.diagnostics
    if isinstance(exc, CheckFailed):
        return Status.FAILED, exc.render(), ""
    if isinstance(exc, SandboxRefused):
        return (
            Status.ERROR,
            f"The grader refused to run your code ({exc}): a problem of the grading machine, not of your code; "
            "tell your instructor.",
            "",
        )
    if isinstance(exc, AssertionError):
        return Status.FAILED, str(exc).strip() or "an assertion of the check failed", ""
    text = str(exc)
    if isinstance(exc, pytest.fail.Exception) and text.startswith("Timeout"):
        return Status.TIMED_OUT, "The check did not finish within its time limit.", ""
    if isinstance(exc, pytest.skip.Exception):
        return Status.ERROR, f"The check was skipped: {text}", ""
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    return (
        Status.ERROR,
        "The grader hit an internal error in this check, not a problem found in your code; "
        "tell your instructor.",
        detail,
    )


def integrity_message(flags: list[str], message: str) -> str:
    """The failure message of a check whose evidence cannot be trusted (``message``: what the check itself said)."""
    observed = "; ".join(flags[:3]) + (f" (and {len(flags) - 3} more)" if len(flags) > 3 else "")
    text = (
        f"Observed: {observed}\n"
        "Expected: code that uses only the assignment's tools (multiprocessing, threading, queues, locks), "
        "without reaching into the grader's probes, its evidence or the modules they observe\n"
        "Hint: this check cannot give points while its evidence cannot be trusted; if you believe this is a "
        "mistake, ask your instructor to review your submission (the report lists every flag)"
    )
    return f"{text}\n(What the check saw besides: {message})" if message else text


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    assignment = item.stash.get(_ASSIGNMENT, None)
    if assignment is None:
        return report
    if call.when == "setup" and call.excinfo is None:
        report.user_properties.append((START_KEY, {"name": _describe(item)[0], "timeout": _timeout_of(item)}))
    if call.when == "call" or (call.when == "setup" and call.excinfo is not None):
        problem = _assignment_problem(item, assignment, call.excinfo.value) if call.excinfo is not None else None
        status, message, diagnostics = _classify(call, problem)
        points, visibility = _points(item, assignment)
        title, description = _describe(item)
        sub = item.stash.get(_SUBMISSION, None)
        if status is Status.FAILED and not diagnostics and sub is not None:
            diagnostics = sub.diagnostics()
        protections: list[str] = []
        if sub is not None and sub.runs:
            protections = list(sub.runs[-1].raw.protections)
        elif sub is not None:  # the check's time ran out as its run returned
            protections = list(sub.sandbox.last_protections)
        integrity = sub.integrity_flags() if sub is not None else []
        if integrity and status in (Status.PASSED, Status.FAILED):
            status, message = Status.FAILED, integrity_message(integrity, message)
        message, diagnostics = safe_text(message), safe_text(diagnostics)
        info = {
            "id": _check_name(item),
            "name": title,
            "description": description,
            "max_points": points,
            "points": points if status is Status.PASSED else 0.0,
            "status": status.value,
            "message": message,
            "diagnostics": diagnostics,
            "output": sub.output_text(OUTPUT_LIMIT) if sub is not None else "",
            "duration": round(call.duration, 3),
            "visibility": visibility,
            "assignment": assignment.name,
            "protections": protections,
            "integrity": [safe_text(flag) for flag in integrity],
        }
        report.user_properties.append((GRADE_KEY, info))
        if problem is not None:
            report.user_properties.append((ASSIGNMENT_ERROR_KEY, problem.render()))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A check file of an assignment that fails to import: one short block (file, line, exception), not pytest's traceback."""
    report = yield
    call = getattr(report, "call", None)
    if not report.failed or call is None or call.excinfo is None or not isinstance(collector, pytest.File):
        return report
    try:
        assignment = assignment_for(Path(collector.path).parent)
    except AssignmentError:
        return report
    if assignment is None:
        return report
    exc = call.excinfo.value
    if isinstance(exc, collector.CollectError) and exc.__cause__ is not None:
        exc = exc.__cause__
    problem = problem_from_exception(exc, assignment.path, stop_at=_GRADER_DIR)
    if problem is None:
        name = Path(collector.path).name
        problem = AssignmentProblem(name, None, f"{name} could not be imported: {str(exc).strip() or type(exc).__name__}")
    report.longrepr = problem.render()
    return report


class ProgressWriter:
    """Appends the checks' progress to a file as JSON lines, on the controller (never on an xdist worker).

    ``{"event": "collected", "count": N}`` once the checks are known, ``{"event": "started", "id": NODEID,
    "name": TITLE, "timeout": SECONDS}`` when a check's setup is done, ``{"event": "finished", "id": NODEID,
    "name": ..., "status": ..., "points": ..., "max_points": ..., "duration": ...}`` when it is graded.
    Each line is written whole with one ``write``; a reader keeps only complete lines.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.collected = False

    def _append(self, event: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write(json.dumps(event) + "\n")
        except OSError:
            pass  # progress is a courtesy; the result file is what counts

    def _collected(self, count: int) -> None:
        if not self.collected:
            self.collected = True
            self._append({"event": "collected", "count": count})

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected(sum(1 for item in session.items if _ASSIGNMENT in item.stash))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        self._collected(len(ids))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == START_KEY and isinstance(value, dict):
                self._append({"event": "started", "id": report.nodeid, **value})
            elif key == GRADE_KEY and isinstance(value, dict):
                fields = ("name", "status", "points", "max_points", "duration")
                self._append({"event": "finished", "id": report.nodeid, **{k: value.get(k) for k in fields}})


class ResultCollector:
    """Collects the graded checks on the controller and writes the result."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.checks: dict[str, tuple[tuple[str, int], dict[str, Any]]] = {}
        self.errors: list[str] = []
        self.assignment_errors: list[str] = []
        self.started = time.monotonic()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, value in report.user_properties:
            if key == ASSIGNMENT_ERROR_KEY and isinstance(value, str) and value not in self.assignment_errors:
                self.assignment_errors.append(value)
            if key == GRADE_KEY and isinstance(value, dict):
                location = (report.location[0], report.location[1] or 0)
                previous = self.checks.get(report.nodeid)
                if previous is None or previous[1]["status"] == Status.PASSED.value:
                    self.checks[report.nodeid] = (location, value)
        if report.failed and report.nodeid not in self.checks and report.when != "teardown":
            crashed = "worker" in str(report.longrepr).lower() and "crashed" in str(report.longrepr).lower()
            if crashed:
                self.errors.append(f"{report.nodeid}: the process running this check crashed")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not report.failed:
            return
        text = str(report.longrepr)
        if text.startswith(PROBLEM_PREFIX):
            if text not in self.assignment_errors:
                self.assignment_errors.append(text)
        else:
            self.errors.append(f"could not load the checks in {report.nodeid or 'the assignment'}:\n{text}")

    def result(self) -> SubmissionResult | None:
        if not self.checks and not self.errors and not self.assignment_errors:
            return None
        ordered = sorted(self.checks.values(), key=lambda entry: entry[0])
        checks = [CheckResult.from_dict(info) for _, info in ordered]
        assignment = ordered[0][1]["assignment"] if ordered else ""
        protections: list[str] = []
        for _, info in ordered:
            if info.get("protections"):
                protections = list(info["protections"])
                break
        if not protections and checks:
            protections = ["no student code ran: the submission was refused before any check started it"]
        error = None
        detail = ""
        if self.assignment_errors:
            error = BROKEN
            detail = "\n".join(self.assignment_errors + self.errors)[-8000:]
        elif self.errors:
            error = "the checks could not run"
            detail = "\n".join(self.errors)[-8000:]
        result = SubmissionResult(
            assignment=assignment,
            student=self.config.getoption("grader_student") or "",
            submission=str(self.config.getoption("submission") or ""),
            checks=checks,
            duration=round(time.monotonic() - self.started, 3),
            error=error,
            error_detail=detail,
            protections=protections,
            python=platform.python_version(),
            metadata={PROBLEMS_KEY: list(self.assignment_errors)} if self.assignment_errors else {},
            unsafe=UNSAFE_NOTE if self.config.getoption("grader_unsafe_no_sandbox") else "",
        )
        result.flag_integrity()
        self._describe_submission(result)
        return result

    def _describe_submission(self, result: SubmissionResult) -> None:
        """Which file was graded, or that no gradable file was found (the same finder the checks used)."""
        assignment = self.config.stash.get(_GRADED_ASSIGNMENT, None)
        path = self.config.getoption("submission")
        if assignment is None or not path:
            return
        found = find_module(assignment, Path(path).resolve())
        if found.ok:
            result.graded_file, result.notes = found.graded_file, list(found.notes)
        else:
            result.no_submission, result.seen = found.problem, list(found.seen)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.result()
        if result is None or not result.checks:
            return
        terminalreporter.write_sep("=", f"grade: {result.score:g}/{result.max_score:g} for {result.assignment}")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.config.getoption("grader_results")
        if not path:
            return
        result = self.result()
        if result is None:
            result = SubmissionResult(
                assignment="",
                student=self.config.getoption("grader_student") or "",
                submission=str(self.config.getoption("submission") or ""),
                error="no checks ran",
                error_detail="pytest collected no checks of an assignment",
            )
        Path(path).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
