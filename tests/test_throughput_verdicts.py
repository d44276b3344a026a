"""benchmarks/throughput.py: what counts as the same verdict for the loop and for `grader grade`; `--beside`'s other work."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import psutil  # noqa: E402
import pytest  # noqa: E402
from corpus_expectations import expectation  # noqa: E402
from installed import installed_environment, plain_pytest_options, runtime_distributions  # noqa: E402
from throughput import OTHER_WORK, Measure, OtherWork, class_mix, joined, outcome  # noqa: E402

CORRECT = ROOT / "tests" / "corpus" / "bounded_buffer" / "correct" / "semaphores.py"


@pytest.fixture
def racy(tmp_path: Path) -> Path:
    """A buggy entry whose header names one check, and whose code may lose another on some runs."""
    path = tmp_path / "bounded_buffer" / "buggy" / "append_outside_lock.py"
    path.parent.mkdir(parents=True)
    path.write_text("# expect-fail: test_storage_used_under_one_lock\nimport threading\n")
    return path


def test_a_racy_entry_losing_one_more_check_is_the_same_verdict(racy: Path) -> None:
    one = (("test_never_more_than_capacity", "passed"), ("test_storage_used_under_one_lock", "failed"))
    other = (("test_never_more_than_capacity", "failed"), ("test_storage_used_under_one_lock", "timed_out"))
    assert outcome(one, racy) == outcome(other, racy)


def test_a_named_check_passing_in_one_grading_differs(racy: Path) -> None:
    caught = (("test_never_more_than_capacity", "passed"), ("test_storage_used_under_one_lock", "failed"))
    missed = (("test_never_more_than_capacity", "failed"), ("test_storage_used_under_one_lock", "passed"))
    assert outcome(caught, racy) != outcome(missed, racy)


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


def test_other_work_uses_cpus_while_it_runs_and_ends_with_its_block() -> None:
    with OtherWork(2) as other:
        procs = [psutil.Process(p.pid) for p in other.procs]
        assert len(procs) == 2 and set(OTHER_WORK) == {p.pid for p in procs}
        deadline = time.monotonic() + 60
        while min(sum(p.cpu_times()[:2]) for p in procs) < 0.2:  # each one computes, not waits
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert not OTHER_WORK
    assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in procs)


def test_a_class_without_hanging_students_has_the_same_size_and_correct_half() -> None:
    plain = class_mix("fifo_queue", 24)
    calm = class_mix("fifo_queue", 24, with_hanging=False)
    assert any(expectation(p).timing_out for p in plain)
    assert not any(expectation(p).timing_out for p in calm)
    assert len(calm) == 24 and [p for p in calm if p.parent.name == "correct"] == [
        p for p in plain if p.parent.name == "correct"
    ]


def test_the_loops_two_halves_add_up_to_one_loop() -> None:
    first = Measure(10.0, 200, {"s000": (("test_a", "passed"),)}, 9.0)
    second = Measure(12.5, 300, {"s001": (("test_a", "failed"),)}, 11.0)
    whole = joined(first, second)
    assert (whole.wall, whole.peak_rss, whole.cpu) == (22.5, 300, 20.0)
    assert whole.verdicts == {"s000": (("test_a", "passed"),), "s001": (("test_a", "failed"),)}


def test_the_loop_runs_plain_pytest_with_the_plugins_of_an_install_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """hypothesis (a development tool here) is installed: its plugin would load in every plain pytest run."""
    from importlib import metadata

    runtime = runtime_distributions()
    assert {"concurrency-grader", "pytest", "pytest-xdist", "pytest-timeout", "jinja2"} <= runtime
    assert "hypothesis" not in runtime
    options = plain_pytest_options()
    installed = {e.name for e in metadata.entry_points(group="pytest11")}
    assert "hypothesispytest" in installed, "the development environment has hypothesis and its plugin"
    assert options[options.index("no:hypothesispytest") - 1] == "-p"
    assert not {"no:xdist", "no:timeout", "no:grader"} & set(options)
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = installed_environment()
    assert "PYTHONDONTWRITEBYTECODE" not in env and Path(env["PYTHONPYCACHEPREFIX"]).is_dir()
