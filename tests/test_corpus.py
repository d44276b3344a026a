"""Every corpus submission of every bundled assignment is graded as its header says.

Correct solutions get full marks; each buggy one loses the points of every
check named in its ``# expect-fail:`` header (and ``# expect-timeout:`` checks
end with the status "timed out"; those also named in ``# expect-deadlock:`` are proven deadlocked
and ended before their time limit). With ``# expect-only-these``, every other check keeps its points.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_expectations import expectation

from grader.grading.grade import grade_submission
from grader.model.assignment import bundled_dir, find_assignment
from grader.model.results import Status

CORPUS = Path(__file__).parent / "corpus"


def _entries() -> list[Path]:
    bundled = {p.name for p in bundled_dir().iterdir() if (p / "assignment.toml").is_file()}
    paths = []
    for folder in sorted(CORPUS.iterdir()):
        if folder.name in bundled:
            paths.extend(sorted(folder.glob("correct/*.py")) + sorted(folder.glob("buggy/*.py")))
    return paths


def _params() -> list[object]:
    # Correct entries are the quick part (and prove no correct style loses points on this Python);
    # buggy ones are marked slow, so `-m "not slow"` is a short run.
    return [
        pytest.param(path, marks=() if path.parent.name == "correct" else (pytest.mark.slow,)) for path in _entries()
    ]


@pytest.mark.parametrize("path", _params(), ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.stem}")
def test_corpus_entry_is_graded_as_expected(path: Path) -> None:
    expected = expectation(path)
    assignment = find_assignment(path.parent.parent.name)
    # A submission that hangs spends its checks waiting for their time limits, not computing:
    # those checks may wait side by side.
    result = grade_submission(assignment, path, check_workers=3 if expected.timing_out else 1)
    assert result.graded, f"{path} could not be graded: {result.error}\n{result.error_detail}"
    assert not result.integrity, f"{path} is an honest solution but was flagged: {result.integrity}"
    by_id = {c.id: c for c in result.checks}
    summary = "\n".join(f"{c.id}: {c.status.value} {c.message}" for c in result.checks)
    if expected.correct:
        assert result.full_marks, f"{path} is correct but lost points:\n{summary}"
        return
    assert result.score < result.max_score, f"{path} is buggy but got full marks"
    for name in expected.failing:
        assert name in by_id, f"{path}: no check named {name}"
        assert not by_id[name].passed, f"{path}: {name} should have failed:\n{summary}"
        assert by_id[name].message, f"{path}: {name} failed without a message"
    if expected.exact:  # the rest keep their points, on every run
        kept = [c for c in result.checks if c.id not in expected.failing + expected.timing_out and not c.passed]
        assert not kept, f"{path}: only the checks its header names may lose points:\n{summary}"
    for name in expected.timing_out:
        assert by_id[name].status is Status.TIMED_OUT, f"{path}: {name} should have timed out:\n{summary}"
        # a proven deadlock ends at once (whether the others deadlock or still run depends on their timing;
        # that runs which sleep or wait with a timeout are never ended early is tests/test_deadlock_proof.py's)
        if name in expected.deadlocking:
            assert "deadlocked: after" in by_id[name].message, f"{path}: {name} was not ended early:\n{summary}"


def test_each_fixed_twin_is_a_correct_entry_of_its_assignment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``# fixed-twin: correct/NAME.py`` (benchmarks/time_to_verdict.py) names a correct entry beside its buggy one."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from time_to_verdict import entries

    twins = [(path, twin) for _, path, twin in entries() if twin is not None]
    assert twins, "no deadlocking entry names its fixed twin"
    for path, twin in twins:
        assert twin.is_file(), f"{path.name} names {twin}, which does not exist"
        assert twin.parent == path.parent.parent / "correct", twin
        assert expectation(twin).correct
