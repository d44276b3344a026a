"""grade_all: the pool over grade_submission, and the progress display."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from grader.grading import batch
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult


def fake_result(student: str, points: float) -> SubmissionResult:
    check = CheckResult(
        id="test_x", name="x", max_points=2, points=points, status=Status.PASSED if points == 2 else Status.FAILED
    )
    return SubmissionResult(assignment="hello_processes", student=student, submission="", checks=[check])


def test_one_crash_or_slow_submission_does_not_change_the_others(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    workers: set[int] = set()

    def grade(
        assignment: object, path: Path, *, student: str = "", check_workers: int = 1, **options: object
    ) -> SubmissionResult:
        nonlocal running, peak
        assert set(options) == {"warm", "on_start", "unsafe", "stop_early"} and options["unsafe"] is False
        assert options["stop_early"] is None
        workers.add(check_workers)
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            if student == "crash":
                raise RuntimeError("the grader broke")
            time.sleep(0.5 if student == "slow" else 0.05)
            return fake_result(student, 2 if student != "half" else 1)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(batch, "grade_submission", grade)
    names = ["ann", "crash", "slow", "half", "zed"]
    subs = [batch.StudentSubmission(n, tmp_path / n, f"class/{n}", {"lms": "canvas"}) for n in names]
    seen: list[str] = []
    results = batch.grade_all(
        find_assignment("hello_processes"), subs, jobs=2, check_workers=3, on_result=lambda r: seen.append(r.student)
    )
    assert workers == {3}
    assert [r.student for r in results] == names  # in the order of the submissions, whatever finished first
    assert sorted(seen) == sorted(names) and seen[-1] == "slow"
    assert peak == 2
    by_name = {r.student: r for r in results}
    assert by_name["crash"].error == "the grader failed on this submission: RuntimeError: the grader broke"
    assert [by_name[n].score for n in ("ann", "slow", "half", "zed")] == [2, 2, 1, 2]
    assert all(r.metadata == {"lms": "canvas"} for r in results)
    assert by_name["ann"].submission == "class/ann"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise() -> None:
    plain = io.StringIO()
    progress = batch.Progress(2, plain)
    progress.update(fake_result("ann", 2))
    progress.update(SubmissionResult(assignment="a", student="bob", submission="", error="boom"))
    assert plain.getvalue().splitlines() == ["[1/2] ann: 2/2 (0.0s)", "[2/2] bob: NOT GRADED (0.0s)"]
    tty = FakeTerminal()
    progress = batch.Progress(2, tty)
    progress.update(fake_result("ann", 1))
    assert tty.getvalue().startswith("\r[###############...............] 1/2")
    progress.update(fake_result("bob", 2))
    assert tty.getvalue().endswith("\n") and "2/2" in tty.getvalue()
