"""The evidence schema: the probes the sandbox registers are the ones the trusted side accepts."""

from __future__ import annotations

import importlib

import pytest

from grader.evidence import Run
from grader.evidence.schema import require_event_kind, require_probes
from grader.inside import events, probes
from grader.model.assignment import AssignmentError
from grader.sandbox import RawRun


def test_every_probe_module_registers_exactly_the_probes_of_the_schema() -> None:
    for name in probes.extra_probe_modules():
        importlib.import_module(f"grader.inside.{name}")
    assert set(probes.PROBES) == events.PROBES


def test_an_unknown_probe_is_an_assignment_error_naming_it_and_the_known_ones() -> None:
    require_probes(["locks", "pools"])
    with pytest.raises(AssignmentError) as caught:
        require_probes(["lock"])
    text = str(caught.value)
    assert text.startswith("test_events.py line ")
    assert "'lock'" in text and "known probes: futures, locks, " in text
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
