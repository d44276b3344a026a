"""grade_all: the pool over grade_submission, and the progress display."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import pytest

from grader.grading import batch
from grader.grading.timings import ClassTimings
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


def test_several_assignments_in_one_queue_each_graded_by_its_own_and_only_the_last_get_the_tail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    graded: list[tuple[str, str, int]] = []

    def grade(assignment: object, path: Path, *, student: str = "", check_workers: int = 1, **options: object
              ) -> SubmissionResult:
        graded.append((assignment.name, student, check_workers))  # type: ignore[attr-defined]
        time.sleep(0.02)
        result = fake_result(student, 2)
        result.assignment = assignment.name  # type: ignore[attr-defined]
        result.checks[0].duration = 2.0  # checks that take long: the tail's workers pay (ClassTimings)
        return result

    monkeypatch.setattr(batch, "grade_submission", grade)
    monkeypatch.setattr(batch, "available_cpus", lambda: 2)  # a two-CPU machine, whatever this one has
    monkeypatch.setattr(batch, "default_check_workers", lambda jobs: 1)
    fifo, dining = find_assignment("fifo_queue"), find_assignment("dining_philosophers")
    work = [(fifo, batch.StudentSubmission(n, tmp_path / n, n, {})) for n in ("a1", "a2", "a3")]
    work += [(dining, batch.StudentSubmission(n, tmp_path / n, n, {})) for n in ("b1", "b2")]
    results = batch.grade_many(work, jobs=2, warm_batches=False, overlap_waits=False)
    assert [(r.assignment, r.student) for r in results] == [(a.name, s.student) for a, s in work]
    assert sorted((name, student) for name, student, _ in graded) == sorted((a.name, s.student) for a, s in work)
    workers = {student: count for _, student, count in graded}
    # the tail of the whole queue: b1 and b2, the last two to start, and a3, which starts once a1 or a2 ended with
    # four left to finish (at most 2 x jobs, itself included); two check workers per CPU
    assert workers["a3"] == workers["b1"] == workers["b2"] == 4
    assert workers["a1"] == workers["a2"] == 1  # not the last of their own class's: five and four left


@pytest.mark.parametrize(("seconds", "tail_workers"), [(0.3, 1), (2.0, 4)])
def test_the_tail_gets_its_check_workers_only_where_the_class_s_checks_take_long(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seconds: float, tail_workers: int
) -> None:
    """Gradings that ended say how long the assignment's checks take: quick ones leave the tail with one worker."""
    graded: dict[str, int] = {}

    def grade(assignment: object, path: Path, *, student: str = "", check_workers: int = 1, **options: object
              ) -> SubmissionResult:
        graded[student] = check_workers
        result = fake_result(student, 2)
        result.checks[0].duration = seconds
        return result

    monkeypatch.setattr(batch, "grade_submission", grade)
    monkeypatch.setattr(batch, "available_cpus", lambda: 2)
    monkeypatch.setattr(batch, "default_check_workers", lambda jobs: 1)
    names = [f"s{i}" for i in range(8)]
    subs = [batch.StudentSubmission(n, tmp_path / n, n, {}) for n in names]
    batch.grade_all(find_assignment("duplex_pipe"), subs, jobs=1, warm_batches=False, overlap_waits=False)
    # one at a time: six end before the last two start, in the tail (at most two left to finish)
    assert [graded[n] for n in names] == [1] * 6 + [tail_workers] * 2


def test_class_timings_keep_the_tail_s_workers_until_two_gradings_of_the_assignment_ended() -> None:
    times = ClassTimings()
    quick = fake_result("a", 2)
    quick.checks[0].duration = 0.2
    times.ended("duplex_pipe", quick)
    assert times.tail_pays("duplex_pipe")
    times.ended("duplex_pipe", SubmissionResult(assignment="duplex_pipe", student="b", submission="", error="broke"))
    assert times.tail_pays("duplex_pipe")  # a grading that failed says nothing of the checks
    times.ended("duplex_pipe", quick)
    assert not times.tail_pays("duplex_pipe")
    assert times.tail_pays("fifo_queue")  # per assignment
    slow = fake_result("c", 2)
    slow.checks[0].duration = 30.0
    times.ended("duplex_pipe", slow)
    times.ended("duplex_pipe", slow)
    assert times.tail_pays("duplex_pipe")  # the median, 30 s


@pytest.mark.parametrize(
    ("waiting", "running", "jobs", "tail"),
    [
        (5, 0, 2, False),  # the second of a class of seven
        (3, 0, 2, True),  # four left, itself included
        (2, 1, 2, True),  # third from last, one running beside it
        (2, 2, 2, False),  # third from last, two running: five left
        (0, 7, 2, True),  # the last to start, seven gradings that wait still under way
        (1, 7, 2, True),
        (2, 7, 2, False),  # third from last to start, ten left to finish
        (0, 3, 2, True),
        (7, 0, 4, True),  # eight left with four jobs
        (0, 0, 1, True),  # a batch of one
        (1, 1, 1, False),
    ],
)
def test_the_tail_is_what_is_left_to_finish_not_only_to_start(waiting: int, running: int, jobs: int, tail: bool) -> None:
    assert batch.in_the_tail(waiting, running, jobs) is tail


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
