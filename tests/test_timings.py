"""`grader check` runs an assignment's checks one after another where they took under a second last time."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from grader import cli
from grader.grading import timings
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult
from tests.conftest import ROOT, grader_command


def _result(*durations: float) -> SubmissionResult:
    return SubmissionResult(
        assignment="dining_philosophers", student="", submission="s.py",
        checks=[
            CheckResult(id=f"c{i}", name=f"c{i}", max_points=1, points=1, status=Status.PASSED, duration=d)
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
    assert timings.check_workers_for(dining, 2) == 2  # nothing known yet
    timings.remember(dining, _result(0.1, 0.2, 0.3))
    assert timings.last_seconds(dining) == pytest.approx(0.6)
    assert timings.check_workers_for(dining, 2) == 1
    timings.remember(dining, _result(0.5, 0.6))  # the last grading counts, not the quickest
    assert timings.check_workers_for(dining, 2) == 2
    assert timings.check_workers_for(find_assignment("duplex_pipe"), 2) == 2  # per assignment
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
    assert timings.check_workers_for(dining, 2) == 2


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
    assert timings.check_workers_for(dining, 2) == 2
    timings.remember(dining, _result(0.25))
    assert timings.last_seconds(dining) == pytest.approx(0.25)


def test_an_assignment_whose_checks_changed_starts_again(timings_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(ROOT / "assignments" / "duplex_pipe", folder)
    copy = find_assignment(str(folder))
    timings.remember(copy, _result(0.2))
    assert timings.check_workers_for(copy, 2) == 1
    checks = folder / "test_duplex_pipe.py"
    checks.write_text(checks.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    assert timings.check_workers_for(copy, 2) == 2


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
