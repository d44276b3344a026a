"""The readers of lock operations, waits, lock order and futures on hand-made evidence, hostile values included."""

from __future__ import annotations

from typing import Any

from grader.evidence import Run
from grader.evidence.futures import executors, tasks
from grader.evidence.lockorder import order_cycles, order_edges
from grader.evidence.locks import acquisitions
from grader.evidence.waiting import activity, waits
from grader.inside import wire
from grader.sandbox import RawRun

MAIN = 100


def _run(events: list[dict[str, Any]]) -> Run:
    base = [{"ev": "proc", "pid": MAIN, "tid": 1, "t": 0.0}]
    raw = RawRun(result={"call": {"ok": True, "value": wire.encode(None)}}, events=base + events, stdout="", stderr="",
                 timed_out=False, exit_status=0, duration=1.0, main_pid=MAIN)
    return Run(raw, label="f()", module_file="mod.py")


def _new(key: str, kind: str = "Lock", initial: int | None = None, line: int = 3) -> dict[str, Any]:
    return {"ev": "lk_new", "pid": MAIN, "tid": 1, "t": 0.01, "key": key, "lock": kind, "file": "mod.py",
            "line": line, "func": "f", "student": True, "index": 0, "initial": initial}


def _op(lock: str, held: list[str], thread_no: int, t: float, mode: str = "block", **extra: Any) -> dict[str, Any]:
    return {"ev": "lk_op", "pid": MAIN, "tid": 7, "t": t, "op": "acquire", "lock": lock, "held": held, "mode": mode,
            "reentry": False, "file": "mod.py", "line": 9, "func": "g", "student": True, "thread_no": thread_no,
            "name": f"T{thread_no}", **extra}


def test_threads_sharing_an_ident_are_told_apart_by_their_number() -> None:
    run = _run([_new("A"), _new("B"), _op("A", [], 1, 0.1), _op("B", ["A"], 1, 0.2),
                _op("B", [], 2, 0.3), _op("A", ["B"], 2, 0.4)])
    (cycle,) = order_cycles(run)
    assert {edge.thread_name for edge in cycle.edges} == {"T1", "T2"}
    assert {edge.held_at for edge in cycle.edges} == {"mod.py line 9"}


def test_summaries_replace_the_first_seen_count_and_hostile_fields_are_dropped() -> None:
    summary = {**_op("A", [], 1, 0.9), "ev": "lk_op_summary", "thread": 7, "count": 500, "first": 0.1, "last": 0.8}
    run = _run([
        _op("A", [], 1, 0.1), summary,
        _op("A", "not a list", 1, 0.2),  # type: ignore[arg-type]
        _op("A", [3], 1, 0.3),  # type: ignore[list-item]
        {"ev": "lk_wait", "pid": MAIN, "tid": 7, "t": 1.0, "wait": "condition", "lock": 5, "start": "x"},
        {"ev": "lk_wait", "pid": MAIN, "tid": 7, "t": 1.0, "wait": "condition", "lock": None, "start": 0.5,
         "timeout": "soon", "line": "x", "file": "mod.py", "func": "g"},
        {"ev": "lk_wait_summary", "pid": MAIN, "tid": 1, "t": 2.0, "wait": "lock", "thread": 7, "count": "many",
         "seconds": 0.25, "first": 1.1, "last": 1.9, "file": "mod.py", "line": 4, "func": "g"},
        {"ev": "fut_new", "pid": MAIN, "tid": 1, "t": 0.1, "executor": 3},
        {"ev": "fut_submit", "pid": MAIN, "tid": 1, "t": 0.1, "executor": "x", "task": ["t"]},
        {"ev": "fut_submit", "pid": MAIN, "tid": "one", "t": 0.1, "executor": "x", "task": "x-1", "fn": 4},
        {"ev": "fut_task", "pid": MAIN, "tid": None, "t": 0.2, "task": "x-1", "phase": "start"},
    ])
    (taken,) = acquisitions(run)
    assert (taken.count, taken.first, taken.last) == (500, 0.1, 0.8)
    recorded = waits(run, MAIN, 7)
    assert [(w.kind, w.lock, w.timeout, w.line, w.count) for w in recorded] == [
        ("condition", None, None, 0, 1), ("lock", None, None, 4, 1),
    ]
    seen = activity(run, MAIN, 7, 0.5, 2.0)
    assert abs(seen.waited - 0.75) < 1e-9 and seen.operations == 500
    assert executors(run) == []
    (task,) = tasks(run)
    assert (task.fn, task.submit_tid, task.tid, task.start, task.end) == ("?", 0, 0, 0.2, None)
    assert order_edges(run) == []


def test_a_counting_semaphore_is_a_guard_only_when_it_seats_fewer_than_the_cycle() -> None:
    ring = [
        _op("A", ["S"], 1, 0.1), _op("B", ["A", "S"], 1, 0.2),
        _op("B", ["S"], 2, 0.3), _op("C", ["B", "S"], 2, 0.4),
        _op("C", ["S"], 3, 0.5), _op("A", ["C", "S"], 3, 0.6),
    ]
    locks = [_new("A"), _new("B"), _new("C")]
    assert order_cycles(_run([*locks, _new("S", "Semaphore", 2), *ring])) == []
    assert len(order_cycles(_run([*locks, _new("S", "Semaphore", 3), *ring]))) == 1
    assert order_cycles(_run([*locks, _new("S", "Lock"), *ring])) == []  # a guard lock
    tried = [_op(e["lock"], e["held"], e["thread_no"], e["t"], mode="try" if e["held"] != ["S"] else "block")
             for e in ring]
    assert order_cycles(_run([*locks, _new("S", "Semaphore", 3), *tried])) == []
