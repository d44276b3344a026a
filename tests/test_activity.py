"""grader.activity and the batch scheduler: a submission that only waits gives its place, a busy one keeps it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader import activity, batch
from grader.assignment import find_assignment
from grader.results import CheckResult, Status, SubmissionResult

pytestmark = pytest.mark.skipif(not activity.measurable(), reason="CPU use is read from Linux's /proc")

SLEEPER = (
    "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({s})']); "
    "time.sleep({s}); c.wait()"
)
BURNER = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"


def start(code: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code.format(s=seconds)])


def watch(proc: subprocess.Popen[bytes], seconds: float) -> list[bool]:
    """Sample an Activity for ``proc`` every 0.25 s; whether it was busy at each sample after the warm-up."""
    tracker = activity.Activity()
    tracker.attach(proc.pid)
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.monotonic()
        tracker.sample(activity.process_table(), now)
        if now - tracker._since > activity.WARMUP + activity.WINDOW:
            seen.append(tracker.busy(now))
        time.sleep(0.25)
    return seen


def test_the_process_table_sees_a_tree_and_its_cpu() -> None:
    burner = start(BURNER, 1.5)
    try:
        burner.wait(30)
        table = activity.process_table()
        me = os.getpid()
        assert table[me][0] == os.getppid()
        assert activity.tree_cpu(table, me) >= 1.0  # the reaped child's CPU counts for its parent
        assert activity.tree_cpu(table, 2**22 + 12345) is None
        mine = activity.process_table([me])  # only this process's tree
        assert me in mine and 1 not in mine
        assert activity.tree_cpu(mine, me) >= 1.0
    finally:
        burner.kill()
        burner.wait()


def test_a_sleeping_tree_only_waits_and_a_busy_one_is_busy() -> None:
    procs = []
    try:
        procs.append(start(SLEEPER, 10))
        asleep = watch(procs[-1], 6)
        procs.append(start(BURNER, 10))
        busy = watch(procs[-1], 6)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert asleep and not any(asleep)
    assert busy and all(busy)


def test_machine_idle_counts_idle_cpus() -> None:
    machine = activity.MachineIdle()
    assert machine.idle_cpus() == 0.0  # no window yet
    start_time = time.monotonic()
    while time.monotonic() - start_time < activity.WINDOW + 0.5:
        machine.sample(time.monotonic())
        time.sleep(0.25)
    assert 0.0 <= machine.idle_cpus() <= (os.cpu_count() or 1) + 0.5


def fake_result(student: str) -> SubmissionResult:
    check = CheckResult(id="test_x", name="x", max_points=1, points=1, status=Status.PASSED)
    return SubmissionResult(assignment="hello_processes", student=student, submission="", checks=[check])


def run_batch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, code: str, seconds: float, **options: object) -> int:
    """Grade four fake submissions, each a process running ``code``, one job at a time; the peak number at once."""
    running = peak = 0
    lock = threading.Lock()

    def grade(assignment: object, path: Path, *, student: str = "", on_start=None, **_: object) -> SubmissionResult:  # noqa: ANN001
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            proc = start(code, seconds)
            if on_start is not None:
                on_start(proc.pid)
            proc.wait()
            return fake_result(student)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(batch, "grade_submission", grade)
    subs = [batch.StudentSubmission(n, tmp_path / n, n) for n in ("a", "b", "c", "d")]
    results = batch.grade_all(find_assignment("hello_processes"), subs, jobs=1, check_workers=1, warm_batches=False,
                              **options)
    assert [r.student for r in results] == ["a", "b", "c", "d"]
    return peak


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="an idle CPU is needed besides the one job")
def test_submissions_that_only_wait_overlap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, SLEEPER, 8) > 1


def test_without_overlap_one_job_means_one_at_a_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, SLEEPER, 3, overlap_waits=False) == 1


def test_a_busy_submission_keeps_its_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, BURNER, 4) == 1
