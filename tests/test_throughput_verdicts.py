"""benchmarks/throughput.py: what counts as the same verdict for the loop and for `grader grade`."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from throughput import class_mix, outcome  # noqa: E402

RACY = ROOT / "tests" / "corpus" / "bounded_buffer" / "buggy" / "append_outside_lock.py"
CORRECT = ROOT / "tests" / "corpus" / "bounded_buffer" / "correct" / "semaphores.py"


def test_a_racy_entry_losing_one_more_check_is_the_same_verdict() -> None:
    one = (("test_never_more_than_capacity", "passed"), ("test_storage_used_under_one_lock", "failed"))
    other = (("test_never_more_than_capacity", "failed"), ("test_storage_used_under_one_lock", "timed_out"))
    assert outcome(one, RACY) == outcome(other, RACY)


def test_a_named_check_passing_in_one_grading_differs() -> None:
    caught = (("test_never_more_than_capacity", "passed"), ("test_storage_used_under_one_lock", "failed"))
    missed = (("test_never_more_than_capacity", "failed"), ("test_storage_used_under_one_lock", "passed"))
    assert outcome(caught, RACY) != outcome(missed, RACY)


def test_full_marks_against_a_lost_check_differs() -> None:
    full = (("test_a", "passed"), ("test_b", "passed"))
    lost = (("test_a", "passed"), ("test_b", "failed"))
    assert outcome(full, CORRECT) != outcome(lost, CORRECT)
    assert outcome((("error", "the grading crashed"),), CORRECT) != outcome(full, CORRECT)
    assert outcome(None, CORRECT) != outcome(full, CORRECT)


def test_the_class_mixes_correct_buggy_and_hanging_entries() -> None:
    mix = class_mix("locked_counter", 24)
    kinds = [p.parent.name for p in mix]
    assert kinds.count("correct") == 12 and len(mix) == 24
    assert mix[-1].parent.name == "buggy", "the last student is one that hangs, the worst place for it"
