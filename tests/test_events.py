"""The evidence schema: the probes the sandbox registers are the ones the trusted side accepts."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from grader.evidence import Run
from grader.evidence.schema import require_event_kind, require_probes
from grader.inside import events, probes
from grader.model.assignment import AssignmentError
from grader.sandbox import RawRun


def test_every_probe_module_registers_exactly_the_probes_of_the_schema() -> None:
    package = Path(probes.__file__).parent
    for path in sorted(package.glob("probe_*.py")):  # every probe module there is, named in the schema or not
        importlib.import_module(f"grader.inside.{path.stem}")
    assert set(probes.PROBES) == events.PROBES
    assert set(events.PROBE_MODULES) == events.PROBES
    for name, module in events.PROBE_MODULES.items():  # the module named for a probe is the one that registers it
        assert probes.PROBES[name].__module__ == f"grader.inside.{module}", name


def test_an_unknown_probe_is_an_assignment_error_naming_it_and_the_known_ones() -> None:
    require_probes(["locks", "pools"])
    with pytest.raises(AssignmentError) as caught:
        require_probes(["lock"])
    text = str(caught.value)
    assert text.startswith("test_events.py line ")
    assert "'lock'" in text and "known probes: close_cycles, futures, late_wakeups, locks, " in text
    with pytest.raises(AssignmentError, match="not the string 'locks'"):
        require_probes("locks")


def test_run_of_refuses_an_event_kind_no_probe_records() -> None:
    raw = RawRun(result=None, events=[{"ev": "pool_mark", "pid": 1, "tid": 1, "t": 0.0, "label": "x"}], stdout="",
                 stderr="", timed_out=False, exit_status=0, duration=0.0, main_pid=1)
    run = Run(raw, label="f()", module_file="mod.py")
    assert len(run.of(events.POOL_MARK)) == 1
    require_event_kind(events.PIPE)
    with pytest.raises(AssignmentError, match="'pool_marks', which no probe records"):
        run.of("pool_marks")


@pytest.mark.parametrize("tid", ["x", 1.5, None, [1], {"a": 1}, float("nan")])
def test_a_thread_id_that_is_not_an_integer_reads_as_no_thread(tid: object) -> None:
    """Events come from the student's processes: a forged ``tid`` must not make the checks crash."""
    raw = RawRun(result=None, stdout="", stderr="", timed_out=False, exit_status=0, duration=0.0, main_pid=1, events=[
        {"ev": events.OUT, "pid": 1, "tid": tid, "t": 0.1, "stream": "stdout", "text": "hi\n", "thread": "T"},
        {"ev": events.ENTER, "pid": 1, "tid": tid, "t": 0.2, "func": "f", "call": 1},
        {"ev": events.TH_START, "pid": 1, "tid": tid, "t": 0.3, "ident": 7, "name": "T", "obj": [tid]},
        {"ev": events.TH_JOIN, "pid": 1, "tid": tid, "t": 0.4, "ident": 7, "obj": {"x": [tid]}, "alive": False},
    ])
    run = Run(raw, label="f()", module_file="mod.py")
    assert [(line.text, line.tid) for line in run.lines()] == [("hi", 0)]
    assert [call.tid for call in run.calls("f")] == [0]
    assert [(thread.starter_tid, thread.joined) for thread in run.child_threads()] == [(0, 0.4)]
