"""grader.grading.activity and the batch scheduler: submissions that wait make room for more, a busy one keeps its place."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from grader.grading import activity, batch
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult

pytestmark = pytest.mark.skipif(not activity.measurable(), reason="CPU use is read from Linux's /proc")

SLEEPER = (
    "import subprocess, sys, time; c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep({s})']); "
    "time.sleep({s}); c.wait()"
)
BURNER = "import time\nwhile time.process_time() < {s}: pass"  # uses {s} s of CPU, however long that takes


def start(code: str, seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code.format(s=seconds)])


def watch(proc: subprocess.Popen[bytes], seconds: float) -> list[float]:
    """Sample an Activity for ``proc`` every 0.25 s; its CPU share at each sample after the warm-up."""
    tracker = activity.Activity()
    tracker.attach(proc.pid)
    seen = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        now = time.monotonic()
        tracker.sample(activity.process_table(), now)
        if now - tracker._since > activity.WARMUP + activity.WINDOW:
            seen.append(tracker.share(now))
        time.sleep(0.25)
    return seen


def test_the_process_table_sees_a_tree_and_its_cpu() -> None:
    burner = start(BURNER, 0.5)
    try:
        burner.wait(120)
        table = activity.process_table()
        me = os.getpid()
        assert table[me][0] == os.getppid()
        assert activity.tree_cpu(table, me) >= 0.49  # the reaped child's CPU counts for its parent
        assert activity.tree_cpu(table, 2**22 + 12345) is None
        mine = activity.process_table([me])  # only this process's tree
        assert me in mine and 1 not in mine
        assert activity.tree_cpu(mine, me) >= 0.49
    finally:
        burner.kill()
        burner.wait()


def test_a_sleeping_tree_only_waits() -> None:
    sleeper = start(SLEEPER, 10)
    try:
        asleep = watch(sleeper, 6)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert asleep and max(asleep) < 0.1  # sleeping uses no CPU, however loaded the machine is


def test_the_share_is_the_cpu_used_over_the_window() -> None:
    tracker = activity.Activity()
    tracker.attach(4242)
    t0 = tracker._since
    assert tracker.share(t0 + 0.5) == 1.0  # starting up
    for step in range(13):  # 3 s at a full CPU, then 3 s at 5 % of one
        now = t0 + step * 0.5
        cpu = min(now - t0, 3.0) + max(0.0, now - t0 - 3.0) * 0.05
        tracker.sample({4242: (1, cpu)}, now)
        if step == 6:
            assert tracker.share(now) == pytest.approx(1.0)
    assert tracker.share(t0 + 6.0) == pytest.approx(0.05)
    tracker.sample({}, t0 + 6.5)  # the process is gone: nothing changes
    assert tracker.share(t0 + 6.5) == pytest.approx(0.05)
    assert activity.Activity().share(t0 + 100) == 1.0  # no pid yet: a whole CPU


def test_machine_idle_counts_idle_cpus() -> None:
    machine = activity.MachineIdle()
    assert machine.idle_cpus() == 0.0  # no window yet
    start_time = time.monotonic()
    while time.monotonic() - start_time < activity.WINDOW + 0.5:
        machine.sample(time.monotonic())
        time.sleep(0.25)
    assert 0.0 <= machine.idle_cpus() <= (os.cpu_count() or 1) + 0.5


def test_machine_idle_answers_once_sampled_over_half_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch's first gradings often wait more than they compute: the idle CPUs are seen from the first half
    # second on, not only once a whole window (2 s) has been sampled.
    clock = iter([0.0, 0.3, 0.6, 2.6])
    machine = activity.MachineIdle()
    monkeypatch.setattr(machine, "_idle_seconds", lambda: next(clock))  # one idle CPU all along
    machine.sample(100.0)
    machine.sample(100.3)
    assert machine.idle_cpus() == 0.0  # 0.3 s sampled: too short to say
    machine.sample(100.6)
    assert machine.idle_cpus() == pytest.approx(1.0)
    assert machine.idle_cpus(1.0) == pytest.approx(1.0)
    machine.sample(102.6)
    assert machine.idle_cpus() == pytest.approx(1.0)


def fake_result(student: str) -> SubmissionResult:
    check = CheckResult(id="test_x", name="x", max_points=1, points=1, status=Status.PASSED)
    return SubmissionResult(assignment="hello_processes", student=student, submission="", checks=[check])


class FakeTrees:
    """A process table where each grading's tree uses ``share`` of a CPU (0: it only waits) since it started.

    ``born`` holds when each pytest process started, as the grading reports it (a process's CPU counts from its
    start); a pid not reported counts from when it is first seen."""

    def __init__(self, share: float) -> None:
        self.share = share
        self.born: dict[int, float] = {}

    def __call__(self, roots: list[int] | None = None) -> dict[int, tuple[int, float]]:
        now = time.monotonic()
        table = {}
        for pid in roots or []:
            born = self.born.setdefault(pid, now)
            table[pid] = (1, (now - born) * self.share)
        return table


def run_batch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, share: float, idle_cpus: float, seconds: float = 5,
    starts: list[float] | None = None, students: int = 3, **options: object,
) -> int:
    """Grade ``students`` fake submissions of ``seconds`` each, one job at a time; the peak number graded at once.

    ``starts`` gets the time each grading started (``time.monotonic``)."""
    running = peak = 0
    lock = threading.Lock()
    pids = iter(range(10_000, 10_100))
    trees = FakeTrees(share)

    def grade(assignment: object, path: Path, *, student: str = "", on_start=None, **_: object) -> SubmissionResult:  # noqa: ANN001
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            if starts is not None:
                starts.append(time.monotonic())
        try:
            if on_start is not None:
                pid = next(pids)
                trees.born[pid] = time.monotonic()
                on_start(pid)
            time.sleep(seconds)
            return fake_result(student)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(batch, "grade_submission", grade)
    monkeypatch.setattr(batch, "process_table", trees)
    monkeypatch.setattr(batch.MachineIdle, "idle_cpus", lambda self, seconds=2.0: idle_cpus)
    names = [f"s{i}" for i in range(students)]
    subs = [batch.StudentSubmission(n, tmp_path / n, n) for n in names]
    results = batch.grade_all(find_assignment("hello_processes"), subs, jobs=1, check_workers=1, warm_batches=False,
                              **options)
    assert [r.student for r in results] == names
    return peak


def test_submissions_that_only_wait_overlap_while_a_cpu_is_idle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=0.0, idle_cpus=1.5) > 1


def test_on_a_busy_machine_waiting_submissions_do_not_overlap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=0.0, idle_cpus=0.05) == 1


def test_without_overlap_one_job_means_one_at_a_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=0.0, idle_cpus=1.5, overlap_waits=False) == 1


def test_submissions_that_wait_part_of_the_time_add_up_to_the_cpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # one job: a grading using half a CPU leaves room for a second, two of them (1.0 > 1 - HEADROOM) for no third
    assert run_batch(monkeypatch, tmp_path, share=0.5, idle_cpus=1.5) == 2


def test_a_third_starts_while_a_tenth_of_the_cpus_is_left(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # one job: two gradings at 0.4 of a CPU use 0.8 <= 1 - HEADROOM, so a third starts (3 is the cap) once the
    # second is past its warm-up (2 s after it started, about 2.5 s after the first)
    assert run_batch(monkeypatch, tmp_path, share=0.4, idle_cpus=1.5, seconds=8) == 3


def test_gradings_that_use_little_make_room_before_their_warm_up_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A grading counts as a whole CPU for its first 2 s (WARMUP); one that measurably used a fifth of a CPU over
    # its first second, with half a CPU idle or more, makes room for the next one sooner.
    starts: list[float] = []
    run_batch(monkeypatch, tmp_path, share=0.2, idle_cpus=1.5, seconds=3, starts=starts)
    assert starts[1] - starts[0] < 1.9, starts


def test_a_grading_that_uses_little_makes_room_at_the_next_look(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Its first sample already says what it used since it started: a fifth of a CPU, with a CPU idle, starts the
    # next one at the look after it (TICK), not a look later, when a second sample would have said the same.
    starts: list[float] = []
    run_batch(monkeypatch, tmp_path, share=0.2, idle_cpus=1.5, seconds=3, starts=starts)
    assert starts[1] - starts[0] < 0.9, starts
    assert starts[2] - starts[1] < 0.9, starts


def test_without_half_a_cpu_idle_the_next_grading_waits_for_the_warm_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    starts: list[float] = []
    run_batch(monkeypatch, tmp_path, share=0.2, idle_cpus=0.3, seconds=3, starts=starts)
    assert starts[1] - starts[0] >= 2.0, starts


def test_short_gradings_count_as_what_the_ones_before_them_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Gradings of 1.2 s never leave their warm-up (2 s). Once two have ended, having used 0.4 of a CPU each, a young
    # one counts as 0.4, not a whole CPU: with a fifth of a CPU idle (less than SPARE), two run at once.
    starts: list[float] = []
    assert run_batch(monkeypatch, tmp_path, share=0.4, idle_cpus=0.2, seconds=1.2, students=6, starts=starts) >= 2
    assert starts[1] - starts[0] >= 1.2 and starts[2] - starts[1] >= 1.2, starts  # one at a time until two ended


def test_short_gradings_that_use_a_whole_cpu_keep_their_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=1.0, idle_cpus=0.2, seconds=1.2, students=6) == 1


def test_short_gradings_on_a_busy_machine_do_not_overlap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=0.4, idle_cpus=0.05, seconds=1.2, students=6) == 1


def test_typical_is_the_median_of_the_last_gradings_within_its_bounds() -> None:
    def ended(rate: float) -> activity.Activity:
        grading = activity.Activity()
        grading.pid = 1
        grading._since = 100.0
        grading._samples.append((102.0, 2.0 * rate))  # its last sample: 2 s after it started
        return grading

    typical = activity.Typical()
    typical.ended(ended(0.3))
    assert typical.rate() == 1.0  # one grading says too little
    unmeasured = activity.Activity()
    typical.ended(unmeasured)  # never sampled: not counted
    assert typical.rate() == 1.0
    typical.ended(ended(0.5))
    assert typical.rate() == pytest.approx(0.4)
    typical.ended(ended(0.9))
    assert typical.rate() == pytest.approx(0.5)
    for _ in range(activity.TYPICAL_OF):
        typical.ended(ended(0.01))
    assert typical.rate() == activity.TYPICAL_FLOOR  # only the last TYPICAL_OF count, and never below the floor
    typical.ended(ended(3.0))  # check workers side by side: more than a CPU counts as one
    for _ in range(activity.TYPICAL_OF):
        typical.ended(ended(3.0))
    assert typical.rate() == 1.0


def test_a_submission_using_most_of_a_cpu_keeps_its_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=0.95, idle_cpus=1.5) == 1


def test_a_busy_submission_keeps_its_place(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert run_batch(monkeypatch, tmp_path, share=1.0, idle_cpus=1.5) == 1


def _after_the_first_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, idle_since_then: float
) -> list[tuple[bool, int]]:
    """Six gradings that only wait, one job: a CPU and a half idle until the first ends, none over the last second
    after it, and ``idle_since_then`` CPUs since it ended. For each start: (after the first ended, gradings running)."""
    ended = threading.Event()
    lock = threading.Lock()
    running = 0
    at_start: list[tuple[bool, int]] = []
    pids = iter(range(20_000, 20_100))

    def grade(assignment: object, path: Path, *, student: str = "", on_start=None, **_: object) -> SubmissionResult:  # noqa: ANN001
        nonlocal running
        with lock:
            at_start.append((ended.is_set(), running))
            running += 1
        try:
            if on_start is not None:
                on_start(next(pids))
            time.sleep(1.5)
            return fake_result(student)
        finally:
            with lock:
                running -= 1
            ended.set()

    monkeypatch.setattr(batch, "grade_submission", grade)
    monkeypatch.setattr(batch, "process_table", FakeTrees(0.0))
    monkeypatch.setattr(batch.MachineIdle, "idle_cpus", lambda self, seconds=2.0: 0.0 if ended.is_set() else 1.5)
    monkeypatch.setattr(batch.MachineIdle, "idle_since", lambda self, when: idle_since_then)
    names = [f"s{i}" for i in range(6)]
    subs = [batch.StudentSubmission(n, tmp_path / n, n) for n in names]
    results = batch.grade_all(find_assignment("hello_processes"), subs, jobs=1, check_workers=1, warm_batches=False)
    assert [r.student for r in results] == names
    return at_start


def test_a_grading_that_ends_makes_room_for_the_next_once_its_cpu_is_seen_idle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A burst of gradings kept every CPU busy until they ended: the idle time over the last second lags, but over
    # the moment since the first ended the CPUs it left are idle, and one starts in its place with others running.
    at_start = _after_the_first_ends(monkeypatch, tmp_path, idle_since_then=1.5)
    later = [others for after, others in at_start if after]
    assert later and max(later) >= 1, at_start


def test_the_places_of_gradings_that_ended_are_given_up_when_other_work_takes_the_cpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Nothing idle since the first ended: other work took the CPUs, and the batch shrinks back to its one job.
    at_start = _after_the_first_ends(monkeypatch, tmp_path, idle_since_then=0.0)
    later = [others for after, others in at_start if after]
    assert max(others for after, others in at_start if not after) >= 1, at_start  # they overlapped before
    assert later and max(later) == 0, at_start


def test_machine_idle_since_a_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.5, 0.5, 0.7])
    machine = activity.MachineIdle()
    monkeypatch.setattr(machine, "_idle_seconds", lambda: next(clock))
    assert machine.idle_since(100.0) == 0.0  # nothing sampled
    machine.sample(100.0)
    machine.sample(100.5)  # one CPU idle until here
    assert machine.idle_since(100.5) == 0.0  # nothing sampled after it yet
    machine.sample(101.0)  # then none
    assert machine.idle_since(100.5) == 0.0
    assert machine.idle_since(100.7) == 0.0  # from the sample at 100.5
    assert machine.idle_since(100.0) == pytest.approx(0.5)
    machine.sample(101.2)  # then one again
    assert machine.idle_since(101.0) == pytest.approx(1.0)
    assert machine.idle_since(99.0) == 0.0  # nothing sampled that early
