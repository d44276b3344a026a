"""The order a batch starts its submissions in: those whose code sleeps early, results in the class's order."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from grader.grading import batch, order
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult

POLLS = "import time\n\n\ndef wait_for(done):\n    while not done():\n        time.sleep(0.5)\n"
PLAIN = "def square(x):\n    return x * x\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "sleeps"),
    [
        (POLLS, True),
        ("from time import sleep\nsleep (1)\n", True),
        ("import asyncio\nasync def f():\n    await asyncio.sleep(0)\n", True),
        (PLAIN, False),
        ("def sleepy():\n    return 'sleep'\n", False),  # a name and a string, no call of a sleep
    ],
)
def test_a_file_sleeps_when_its_source_calls_a_sleep(tmp_path: Path, text: str, sleeps: bool) -> None:
    assert order.sleeps(write(tmp_path / "pool_map.py", text)) is sleeps


def test_a_folder_sleeps_when_one_of_its_python_files_does(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "pool_map.py", PLAIN)
    write(tmp_path / "notes.txt", "time.sleep(1)\n")  # not Python
    assert not order.sleeps(tmp_path)
    write(tmp_path / ".venv" / "lib" / "site-packages" / "wait.py", POLLS)  # not the student's code
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    write(tmp_path / "venv2" / "pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path / "venv2" / "wait.py", POLLS)
    assert not order.sleeps(tmp_path)
    write(tmp_path / "sub" / "helpers" / "wait.py", POLLS)
    assert order.sleeps(tmp_path)


def test_a_named_pipe_is_not_waited_on(tmp_path: Path) -> None:
    write(tmp_path / "pool_map.py", PLAIN)
    os.mkfifo(tmp_path / "pipe.py")  # opening it for reading would wait for a writer
    assert not order.sleeps(tmp_path)
    assert not order.sleeps(tmp_path / "pipe.py")


def test_links_are_not_followed_and_reading_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = write(tmp_path / "elsewhere" / "wait.py", POLLS)
    folder = tmp_path / "student"
    write(folder / "pool_map.py", PLAIN)
    os.symlink(elsewhere, folder / "linked.py")
    os.symlink(elsewhere.parent, folder / "linked_folder")
    assert not order.sleeps(folder)
    assert not order.sleeps(folder / "linked.py")
    # only the first FILES files (by name) are read, and the first READ bytes of each
    monkeypatch.setattr(order, "FILES", 1)
    write(folder / "z_wait.py", POLLS)
    assert not order.sleeps(folder)
    monkeypatch.setattr(order, "FILES", 50)
    assert order.sleeps(folder)
    monkeypatch.setattr(order, "READ", 10)
    assert not order.sleeps(folder)


def test_the_sleeping_start_after_the_first_few_and_each_group_keeps_the_class_order(tmp_path: Path) -> None:
    paths: list[Path | None] = [
        write(tmp_path / "ann.py", PLAIN),
        write(tmp_path / "bob.py", POLLS),
        None,  # not graded: a problem reported, one of those that do not sleep
        write(tmp_path / "dan.py", PLAIN),
        write(tmp_path / "eve" / "pool_map.py", POLLS).parent,
        tmp_path / "missing.py",
        write(tmp_path / "gus.py", PLAIN),
    ]
    assert order.LEAD_PER_JOB == 2
    assert order.start_order(paths, jobs=1) == [0, 1, 4, 2, 3, 5, 6]  # the first two in the class's order
    assert order.start_order(paths, jobs=2) == [0, 1, 2, 3, 4, 5, 6]  # four: eve is the first after them
    assert order.start_order([paths[0]] * 4 + paths, jobs=2) == [0, 1, 2, 3, 5, 8, 4, 6, 7, 9, 10]
    assert order.start_order(paths, jobs=9) == list(range(7))  # fewer than the lead: the class's order
    assert order.start_order([]) == []


def test_a_batch_starts_the_sleeping_early_and_reports_in_the_class_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[str] = []
    lock = threading.Lock()

    def grade(assignment: object, path: Path, *, student: str = "", **options: object) -> SubmissionResult:
        with lock:
            started.append(student)
        time.sleep(0.01)
        check = CheckResult(id="test_x", name="x", max_points=1, points=1, status=Status.PASSED)
        return SubmissionResult(assignment="pool_map", student=student, submission="", checks=[check])

    monkeypatch.setattr(batch, "grade_submission", grade)
    texts = {"ann": PLAIN, "bob": PLAIN, "cy": PLAIN, "dee": POLLS, "eli": PLAIN, "fay": POLLS}
    subs = [batch.StudentSubmission(n, write(tmp_path / f"{n}.py", t), n) for n, t in texts.items()]
    subs.insert(1, batch.StudentSubmission("abe", tmp_path / "abe.py", "abe", problem="unreadable metadata"))
    results = batch.grade_all(find_assignment("pool_map"), subs, jobs=1, warm_batches=False, overlap_waits=False)
    # the first two in the class's order (abe's problem is his result: nothing is graded), then the sleeping
    assert started == ["ann", "dee", "fay", "bob", "cy", "eli"]
    assert [r.student for r in results] == ["ann", "abe", "bob", "cy", "dee", "eli", "fay"]
    assert results[1].error == "unreadable metadata"


HELLO = {  # hello_threads' checks, seconds each in a check run in their own order (rounded)
    "test_hello_prints_its_greeting": 0.15, "test_hello_sleeps_for_delay": 1.27, "test_output_lines": 0.35,
    "test_each_thread_runs_hello_with_its_number_and_delay": 0.25, "test_each_hello_on_its_own_thread": 0.001,
    "test_threads_run_concurrently": 0.55, "test_all_joined_before_done": 0.0, "test_random_delay_by_default": 2.04,
    "test_no_side_effects_at_import": 0.002,
}


def test_longest_first_starts_each_worker_with_a_longest_check_then_a_shortest() -> None:
    two = order.longest_first(HELLO, 2)
    assert sorted(two) == sorted(HELLO)
    assert two[:4] == ["test_random_delay_by_default", "test_all_joined_before_done",
                       "test_hello_sleeps_for_delay", "test_each_hello_on_its_own_thread"]
    rest = [HELLO[check] for check in two[4:]]
    assert rest == sorted(rest, reverse=True)  # then from the longest
    assert order.longest_first(HELLO, 4)[::2][:4] == [  # four workers: each run of two starts with one of the four longest
        "test_random_delay_by_default", "test_hello_sleeps_for_delay", "test_threads_run_concurrently", "test_output_lines"]
    few = {"a": 0.1, "b": 0.3, "c": 0.2}  # fewer than two per worker: xdist hands out one each, longest first
    assert order.longest_first(few, 2) == ["b", "c", "a"]
    assert order.longest_first({"a": 1.0, "b": 1.0, "c": 0.5, "d": 0.5}, 2) == ["a", "d", "b", "c"]  # ties by id
    assert order.longest_first(HELLO, 1) == [] and order.longest_first({"a": 1.0}, 2) == []


SLEEPS = {"test_long_a": 0.6, "test_long_b": 0.5, **{f"test_short_{i}": 0.01 for i in range(6)}}
"""Checks in their file's order, and the seconds each sleeps."""


def test_longest_first_puts_the_two_longest_checks_on_two_check_workers(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pytest-xdist's own load scheduling and two workers: in their file's order the two longest checks
    (first and second) run on one worker; ordered by :func:`longest_first` through ``--grader-first``, on two."""
    pytest.importorskip("xdist")
    pytester.makepyfile(test_sleepers="import os, time\n" + "".join(
        f"\n\ndef {name}():\n    time.sleep({seconds})\n"
        f"    with open(os.environ['WHERE'], 'a') as out:\n"
        f"        out.write('{name} ' + os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n"
        for name, seconds in SLEEPS.items()
    ))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    where = {}
    for label, extra in (("own", []), ("longest", [f"--grader-first={','.join(order.longest_first(SLEEPS, 2))}"])):
        log = pytester.path / f"{label}.txt"
        monkeypatch.setenv("WHERE", str(log))
        run = pytester.runpytest_subprocess("-p", "grader.plugin", "-p", "xdist.plugin", "-n", "2", *extra)
        run.assert_outcomes(passed=len(SLEEPS))
        workers = dict(line.split() for line in log.read_text(encoding="utf-8").splitlines())
        where[label] = (workers["test_long_a"], workers["test_long_b"])
    assert where["own"][0] == where["own"][1]
    assert where["longest"][0] != where["longest"][1]
