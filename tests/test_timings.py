"""`grader check` runs an assignment's checks one after another where they took under a second last time."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from grader import cli
from grader.grading import timings
from grader.grading.grade import StopEarly, pytest_command
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult
from tests.conftest import ROOT, grader_command


def _result(*durations: float, wall: float = 0.0, failed: int | None = None) -> SubmissionResult:
    return SubmissionResult(
        assignment="dining_philosophers", student="", submission="s.py", duration=wall,
        checks=[
            CheckResult(id=f"c{i}", name=f"c{i}", max_points=1, points=0 if i == failed else 1,
                        status=Status.FAILED if i == failed else Status.PASSED, duration=d)
            for i, d in enumerate(durations)
        ],
    )


@pytest.fixture
def timings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "check-timings.json"
    monkeypatch.setenv(timings.ENV, str(path))
    return path


def test_quick_checks_last_time_make_the_next_check_run_them_one_after_another(timings_file: Path) -> None:
    dining = find_assignment("dining_philosophers")
    assert timings.plan(dining, 2).workers == 2  # nothing known yet
    timings.remember(dining, _result(0.1, 0.2, 0.3))
    assert timings.last_seconds(dining) == pytest.approx(0.6)
    assert timings.plan(dining, 2).workers == 1
    timings.remember(dining, _result(0.5, 0.6))  # the last grading counts, not the quickest
    assert timings.plan(dining, 2).workers == 2
    assert timings.plan(find_assignment("duplex_pipe"), 2).workers == 2  # per assignment
    assert timings_file.stat().st_mode & 0o777 == 0o600


def test_nothing_is_kept_from_a_grading_without_checks_or_with_timings_off(
    timings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dining = find_assignment("dining_philosophers")
    timings.remember(dining, _result())
    failed = SubmissionResult(assignment="dining_philosophers", student="", submission="s.py", error="pytest failed")
    timings.remember(dining, failed)
    assert not timings_file.exists()
    monkeypatch.setenv(timings.ENV, "off")
    timings.remember(dining, _result(0.1))
    assert not timings_file.exists()
    assert timings.plan(dining, 2).workers == 2


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[1, 2]", '{"KEY": {"seconds": "0.1", "when": 1}}', '{"KEY": {"seconds": -1, "when": 1}}',
     '{"KEY": {"seconds": NaN, "when": 1}}', '{"KEY": {"seconds": true, "when": 1}}', '{"KEY": [0.1]}'],
)
def test_a_timings_file_that_does_not_parse_is_ignored_and_written_anew(timings_file: Path, content: str) -> None:
    dining = find_assignment("dining_philosophers")
    timings_file.parent.mkdir()
    timings_file.write_text(content.replace("KEY", timings.assignment_key(dining)), encoding="utf-8")
    assert timings.last_seconds(dining) is None
    assert timings.plan(dining, 2).workers == 2
    timings.remember(dining, _result(0.25))
    assert timings.last_seconds(dining) == pytest.approx(0.25)


def test_an_assignment_whose_checks_changed_starts_again(timings_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(ROOT / "assignments" / "duplex_pipe", folder)
    copy = find_assignment(str(folder))
    timings.remember(copy, _result(0.2))
    assert timings.plan(copy, 2).workers == 1
    checks = folder / "test_duplex_pipe.py"
    checks.write_text(checks.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert timings.plan(copy, 2).workers == 2


def test_the_file_keeps_the_assignments_graded_last(timings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timings, "KEEP", 2)
    names = ["dining_philosophers", "duplex_pipe", "isolation"]
    for name in names:
        timings.remember(find_assignment(name), _result(0.1))
    assert [timings.last_seconds(find_assignment(n)) for n in names] == [None, 0.1, 0.1]


def test_grader_check_keeps_its_timings_and_the_next_check_reads_them(
    timings_file: Path, grader_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `grader check` keeps its checks' summed durations; the next check (in process) sizes its workers by them."""
    reference = ROOT / "reference" / "philosophers.py"
    env = {**grader_env, timings.ENV: str(timings_file)}
    done = subprocess.run(grader_command("check", "dining_philosophers", str(reference), "--result", str(tmp_path / "r.json")),
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert "all checks passed" in done.stdout, done.stdout + done.stderr
    checks = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["checks"]
    dining = find_assignment("dining_philosophers")
    entries = json.loads(timings_file.read_text(encoding="utf-8"))
    assert entries[timings.assignment_key(dining)]["seconds"] == pytest.approx(sum(c["duration"] for c in checks), abs=0.002)

    asked: list[int] = []
    durations = [(0.3, 0.4), (0.5, 0.6), (0.1,), (0.1,)]  # what each of the next four checks' checks take

    def grade_shown(*args: object, check_workers: int = 1, **options: object) -> SubmissionResult:
        asked.append(check_workers)
        return _result(*durations[len(asked) - 1])

    monkeypatch.setattr(cli, "grade_shown", grade_shown)
    monkeypatch.setattr(cli, "default_check_workers", lambda jobs=1: 2)
    for extra in ([], [], [], ["--check-workers", "3"]):
        assert cli.main(["check", "dining_philosophers", str(reference), *extra]) == 0
    # the first check reads the real one's timings; each one after reads the last one's: 0.7 s, 1.1 s, then 0.1 s
    first = 1 if entries[timings.assignment_key(dining)]["seconds"] < timings.ONE_WORKER_BELOW else 2
    assert asked == [first, 1, 2, 3]


def test_side_by_side_the_order_that_ended_sooner_is_kept(timings_file: Path) -> None:
    """Longest first is tried once the checks' own order was measured at that number of workers; then the order
    whose last grading ended sooner runs. Only gradings where every check passed count."""
    hello = find_assignment("hello_threads")
    assert timings.plan(hello, 2) == timings.Plan(2)  # nothing known
    own = timings.Plan(2)
    timings.remember(hello, _result(0.2, 2.0, 0.1, 1.2, 0.3, wall=3.5), own)
    assert timings.check_seconds(hello) == {"c0": 0.2, "c1": 2.0, "c2": 0.1, "c3": 1.2, "c4": 0.3}
    longest = timings.plan(hello, 2)
    assert longest.first == ("c1", "c2", "c3", "c0", "c4") and longest.order == "longest"
    assert timings.plan(hello, 3) == timings.Plan(3)  # three workers: the own order not measured with three yet
    timings.remember(hello, _result(0.2, 2.0, 0.1, 1.2, 9.0, wall=2.8), longest)
    assert timings.check_seconds(hello)["c4"] == 0.3  # each check's duration is kept from the own order only
    assert timings.plan(hello, 2) == longest  # 2.8 s against 3.5 s
    timings.remember(hello, _result(0.2, 2.0, 0.1, 1.2, 0.3, wall=20.0, failed=1), longest)  # a check failed
    assert timings.plan(hello, 2) == longest
    timings.remember(hello, _result(0.2, 2.0, 0.1, 1.2, 0.3, wall=3.6), longest)
    assert timings.plan(hello, 2) == own  # 3.6 s against 3.5 s
    timings.remember(hello, _result(0.2, 2.0, 0.1, 1.2, 0.3, wall=3.7), own)
    assert timings.plan(hello, 2) == longest  # 3.6 s against 3.7 s
    assert timings.plan(hello, 1) == timings.Plan(1)  # one worker has no order to choose


@pytest.mark.parametrize(
    "entry",
    ['"checks": {"c0": 1, "c1": 2}, "walls": {"2": {"own": "3.0", "longest": -1}}',
     '"checks": {"c0": 1, "c1": 2}, "walls": [1, 2]',
     '"checks": {"c0": 1, "c1": 2}, "walls": {"2": {"mine": 1.0}}',
     '"checks": [["c0", 1], ["c1", 2]], "walls": {"2": {"own": 3.0}}',
     '"checks": {"c0; rm -rf /": 1, "c1,c2": 2}, "walls": {"2": {"own": 3.0}}'],
)
def test_an_order_is_chosen_only_from_what_parses(timings_file: Path, entry: str) -> None:
    hello = find_assignment("hello_threads")
    timings_file.parent.mkdir()
    key = timings.assignment_key(hello)
    timings_file.write_text('{"' + key + '": {"seconds": 3.0, "when": 1, ' + entry + "}}", encoding="utf-8")
    assert timings.plan(hello, 2) == timings.Plan(2)
    timings.remember(hello, _result(2.0, 1.0, 0.1, wall=2.5), timings.Plan(2))
    assert timings.plan(hello, 2).first == ("c0", "c1", "c2")  # fewer than two per worker: the longest first


def test_the_pytest_command_starts_the_planned_checks_first_only_side_by_side() -> None:
    hello = find_assignment("hello_threads")

    def first(**options: object) -> list[str]:
        return [a for a in pytest_command(hello, Path("s.py"), Path("r.json"), **options) if a.startswith("--grader-first")]

    assert first(check_workers=2, first=("c1", "c0")) == ["--grader-first=c1,c0"]
    assert first(check_workers=1, first=("c1", "c0")) == []
    assert first(check_workers=2) == []
    assert first(check_workers=2, first=("c1",), stop_early=StopEarly(("c0",))) == ["--grader-first=c0"]


def test_grader_check_grades_in_the_planned_order_and_keeps_how_long_it_took(
    timings_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`grader check` (in process) hands each grading its plan, then keeps the grading's duration in its order."""
    hello = find_assignment("hello_threads")
    reference = ROOT / "reference" / hello.module_file
    asked: list[tuple[int, tuple[str, ...]]] = []
    walls = [3.5, 2.8, 3.6, 3.4]

    def grade_shown(*args: object, check_workers: int = 1, first: tuple[str, ...] = (), **options: object) -> SubmissionResult:
        asked.append((check_workers, tuple(first)))
        return _result(0.2, 2.0, 0.1, 1.2, 0.3, wall=walls[len(asked) - 1])

    monkeypatch.setattr(cli, "grade_shown", grade_shown)
    monkeypatch.setattr(cli, "default_check_workers", lambda jobs=1: 2)
    for _ in walls:
        assert cli.main(["check", "hello_threads", str(reference)]) == 0
    longest = ("c1", "c2", "c3", "c0", "c4")
    assert asked == [(2, ()), (2, longest), (2, longest), (2, ())]  # own 3.5 s; longest 2.8 s, then 3.6 s


def test_a_planned_order_reaches_the_grading_s_pytest_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real grading of dining_philosophers' reference, two checks at a time, started in a given order."""
    from grader.grading import check, grade

    commands: list[list[str]] = []

    def spy(*args: object, **options: object) -> list[str]:
        commands.append(pytest_command(*args, **options))  # type: ignore[arg-type]
        return commands[-1]

    monkeypatch.setattr(grade, "pytest_command", spy)
    dining = find_assignment("dining_philosophers")
    source = (Path(dining.path) / "test_dining_philosophers.py").read_text(encoding="utf-8")
    ids = [n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")]
    first = tuple(reversed(ids))
    reference = ROOT / "reference" / dining.module_file
    result = check.grade_shown(dining, reference, reference, check_workers=2, first=first)
    assert result.graded and len(result.checks) == len(ids) and all(c.passed for c in result.checks), result
    assert f"--grader-first={','.join(first)}" in commands[-1]
