"""Forged evidence never earns full marks, and honest solutions are never flagged.

tests/corpus/forgery/<assignment>/<technique>.py are solutions written by a student who read the
installed grader and tried to forge its evidence (each file's header says how, and which checks it must
not pass). Each is graded: it must lose points, and every forgery but the one that needs no tampering
(``caller_writes_total``: the checks fail on the evidence itself) must carry an integrity flag with a
reason on the checks it lost. The static scan must flag no correct, buggy or reference solution.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grader.checks.integrity import scan
from grader.grading.grade import grade_submission
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult

ROOT = Path(__file__).resolve().parent.parent
FORGERIES = sorted((ROOT / "tests" / "corpus" / "forgery").glob("*/*.py"))
NO_TAMPERING = {"caller_writes_total": ["test_total_is_exact", "test_returns_counter_value_after_join",
                                        "test_every_access_under_one_shared_lock"]}
KERNEL_ONLY = {"exitcode_property"}
"""Forgeries that use no pattern the static scan knows: the kernel witness alone flags them."""
HONEST = sorted(
    [*ROOT.glob("tests/corpus/*/correct/*.py"), *ROOT.glob("tests/corpus/*/buggy/*.py"), *ROOT.glob("reference/*.py")]
)


def test_static_scan_flags_no_honest_solution() -> None:
    flagged = {str(p.relative_to(ROOT)): scan(p) for p in HONEST}
    assert HONEST
    assert not {k: v for k, v in flagged.items() if v}


@pytest.mark.parametrize("path", FORGERIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_static_scan_names_file_and_line(path: Path) -> None:
    if path.stem in NO_TAMPERING or path.stem in KERNEL_ONLY:
        assert scan(path) == []
        return
    flags = scan(path)
    assert flags, f"{path.name} uses none of the patterns the scan knows"
    assert all(f"{path.name} line " in flag for flag in flags)


@pytest.mark.slow
@pytest.mark.parametrize("path", FORGERIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_forgery_gets_no_full_marks(path: Path) -> None:
    result = grade_submission(find_assignment(path.parent.name), path)
    assert result.graded, result.error_detail
    summary = "\n".join(f"{c.id}: {c.status.value} {c.points}/{c.max_points} {c.message[:300]}" for c in result.checks)
    assert result.score < result.max_score, f"{path.name} got full marks:\n{summary}"
    failing = NO_TAMPERING.get(path.stem)
    if failing is not None:
        by_id = {c.id: c for c in result.checks}
        for name in failing:
            assert not by_id[name].passed, f"{name} should fail on the evidence:\n{summary}"
        return
    assert result.integrity, f"{path.name} lost points but carries no integrity flag:\n{summary}"
    flagged = [c for c in result.checks if c.integrity]
    assert flagged and all(c.points == 0 and c.status is not Status.PASSED for c in flagged)
    assert all("ask your instructor" in c.message for c in flagged if c.status is Status.FAILED)


def _judge(path: Path, result: SubmissionResult) -> None:
    summary = "\n".join(f"{c.id}: {c.status.value} {c.points}/{c.max_points} {c.message[:300]}" for c in result.checks)
    assert result.score < result.max_score, f"{path.name} got full marks:\n{summary}"
    if path.stem not in NO_TAMPERING:
        assert result.integrity, f"{path.name} lost points but carries no integrity flag:\n{summary}"


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("path", FORGERIES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_forgery_without_root_gets_no_full_marks(path: Path, tmp_path: Path) -> None:
    """The same forgeries graded by a grader without root (a user namespace mapping an ordinary uid)."""
    if os.geteuid() != 0:
        command_prefix: list[str] = []
    elif shutil.which("unshare") is None:
        pytest.skip("simulates an unprivileged grader with unshare")
    else:
        command_prefix = ["unshare", "--user", "--map-user=1000", "--map-group=1000"]
    out = tmp_path / "result.json"
    env = dict(os.environ, TMPDIR=str(tmp_path))
    command = [*command_prefix, sys.executable, "-m", "grader", "check", path.parent.name, str(path), "--result", str(out)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    if "unshare failed" in done.stderr:
        pytest.skip(f"no user namespace here: {done.stderr.strip()}")
    assert done.returncode == 1, f"exit {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    result = SubmissionResult.from_dict(json.loads(out.read_text(encoding="utf-8")))
    assert not any("own unprivileged uid" in p for p in result.protections), "this grading had root after all"
    _judge(path, result)


def test_integrity_round_trips() -> None:
    check = CheckResult("c", "C", 2.0, 0.0, Status.FAILED, "m", integrity=["the submission uses sys.modules (x.py line 3)"])
    result = SubmissionResult("a", "s", "p", checks=[check])
    result.flag_integrity()
    again = SubmissionResult.from_dict(result.to_dict())
    assert again.integrity == ["the submission uses sys.modules (x.py line 3)"]
    assert again.checks[0].integrity == check.integrity
    assert SubmissionResult.from_dict({**result.to_dict(), "integrity": None}).integrity == []
