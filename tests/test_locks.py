"""The lockset analysis of grader.evidence.locks, on synthetic evidence and on real sandbox runs."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

from grader.evidence import Run
from grader.evidence.locks import accesses, describe_lock, lock_creations, lockset, process_labels
from grader.inside import wire
from grader.sandbox import RawRun, Sandbox

MAIN, W1, W2 = 100, 201, 202
T_MAIN, T1, T2 = 1, 11, 12


def _run(events: list[dict[str, Any]]) -> Run:
    base = [
        {"ev": "proc", "pid": MAIN, "tid": T_MAIN, "t": 0.0},
        {"ev": "proc", "pid": W1, "tid": T1, "t": 0.2},
        {"ev": "proc", "pid": W2, "tid": T2, "t": 0.3},
        {"ev": "mp_start", "pid": MAIN, "tid": T_MAIN, "t": 0.1, "child": W1, "name": "Process-1"},
        {"ev": "mp_start", "pid": MAIN, "tid": T_MAIN, "t": 0.15, "child": W2, "name": "Process-2"},
    ]
    raw = RawRun(
        result={"call": {"ok": True, "value": wire.encode(2)}},
        events=sorted(base + events, key=lambda e: e["t"]),
        stdout="", stderr="", timed_out=False, exit_status=0, duration=1.0, main_pid=MAIN,
    )
    return Run(raw, label="run()", module_file="locked_counter.py")


def _access(pid: int, tid: int, t: float, op: str, locks: list[str], line: int = 9, **extra: Any) -> dict[str, Any]:
    return {
        "ev": "lk_access", "pid": pid, "tid": tid, "t": t, "value": "shm:1:2:0", "op": op, "locks": locks,
        "own": "/own", "file": "locked_counter.py", "line": line, "func": "increment", "student": True, "v": 1,
        **extra,
    }


def _summary(pid: int, tid: int, t: float, op: str, locks: list[str], count: int, last_value: int) -> dict[str, Any]:
    event = _access(pid, tid, t, op, locks, thread=tid, count=count, first=t - 0.05, last=t - 0.01)
    event.update(ev="lk_summary", tid=T_MAIN, v=last_value)  # flushed by the process's main thread
    return event


def _new(pid: int, key: str, line: int, t: float = 0.01, func: str = "run") -> dict[str, Any]:
    return {"ev": "lk_new", "pid": pid, "tid": T_MAIN, "t": t, "key": key, "lock": "Lock", "file": "locked_counter.py",
            "line": line, "func": func, "student": True}


def test_first_seen_and_summary_events_merge_into_counted_accesses() -> None:
    run = _run([
        _access(W1, T1, 0.5, "read", ["/L"]),
        _summary(W1, T1, 0.9, "read", ["/L"], count=200, last_value=399),
        _access(W2, T2, 0.6, "read", ["/L"]),  # this process never reported its counts
    ])
    found = {(a.pid, a.op): a for a in accesses(run)}
    assert found[(W1, "read")].count == 200
    assert found[(W1, "read")].tid == T1
    assert found[(W1, "read")].last_value == 399
    assert found[(W2, "read")].count == 1
    assert found[(W1, "read")].where() == "locked_counter.py line 9"


def test_a_runs_accesses_are_read_once_for_every_check_that_asks_and_again_when_its_events_change(monkeypatch: Any) -> None:
    import grader.evidence.locks as locks_module

    reads = []
    original = locks_module._accesses
    monkeypatch.setattr(locks_module, "_accesses", lambda run: reads.append(run) or original(run))
    run = _run([_access(W1, T1, 0.5, "read", ["/L"]), _access(W2, T2, 0.6, "read", ["/L"])])
    first = accesses(run)
    first.clear()  # a caller's copy: changing it changes nothing for the next check
    assert len(accesses(run)) == 2 and len(lockset(run)[0].accesses) == 2
    assert len(reads) == 1
    run.events.append(_access(W1, T1, 0.7, "write", [], line=12))  # evidence added: read again
    assert len(accesses(run)) == 3 and len(reads) == 2
    other = _run([_access(W1, T1, 0.5, "read", ["/L"])])
    assert len(accesses(other)) == 1 and len(reads) == 3  # a run of its own is read on its own


def test_a_runs_integrity_flags_are_judged_once_and_handed_out_as_copies(monkeypatch: Any) -> None:
    import grader.evidence.integrity as integrity

    judged = []
    original = integrity._run_flags
    monkeypatch.setattr(integrity, "_run_flags", lambda run: judged.append(run) or original(run))
    run = _run([{"ev": "tamper", "pid": W1, "tid": T1, "t": 0.4, "audit": "open", "why": "opens a file of x",
                 "file": "locked_counter.py", "line": 3}])
    flags = integrity.run_flags(run)
    assert flags and "opens a file of x" in flags[0]
    flags.append("changed by a caller")
    assert integrity.run_flags(run) == flags[:-1]
    assert len(judged) == 1


def test_one_shared_lock_is_consistent_and_the_parent_main_thread_is_left_out() -> None:
    run = _run([
        _access(W1, T1, 0.5, "read", ["/L"]), _access(W1, T1, 0.51, "write", ["/L"]),
        _access(W2, T2, 0.6, "read", ["/L", "/own"]), _access(W2, T2, 0.61, "write", ["/L"]),
        _access(MAIN, T_MAIN, 0.9, "read", [], line=20),
    ])
    (result,) = lockset(run)
    assert result.ok and result.common == frozenset({"/L"})
    assert all(a.pid != MAIN for a in result.accesses)


def test_an_access_holding_no_lock_is_named_with_process_and_line() -> None:
    run = _run([
        _access(W1, T1, 0.5, "read", [], line=8), _access(W1, T1, 0.51, "write", ["/L"]),
        _access(W2, T2, 0.6, "read", [], line=8), _access(W2, T2, 0.61, "write", ["/L"]),
    ])
    (result,) = lockset(run)
    assert result.problem is not None
    assert result.problem.startswith(
        f"process 1 of 2 (pid {W1}) read counter.value at locked_counter.py line 8 holding no lock (once)"
    )
    assert f"process 2 of 2 (pid {W2}) did the same" in result.problem


def test_a_lock_per_worker_is_reported_with_where_each_was_created() -> None:
    run = _run([
        _new(MAIN, "/A", 14), _new(MAIN, "/B", 14, t=0.02),
        _access(W1, T1, 0.5, "write", ["/A"]), _access(W2, T2, 0.6, "write", ["/B"]),
    ])
    (result,) = lockset(run)
    assert result.problem == (
        f"process 1 of 2 (pid {W1}) wrote counter.value at locked_counter.py line 9 holding the Lock created at "
        f"locked_counter.py line 14 in run() by the parent process, but process 2 of 2 (pid {W2}) wrote it at "
        "locked_counter.py line 9 holding the Lock created at locked_counter.py line 14 in run() by the parent "
        "process: each holds a different lock, so they do not exclude each other"
    )


def test_a_lock_per_call_is_reported_as_many_locks_in_one_process() -> None:
    events = [_new(W1, f"/c{i}", 8, t=0.4 + i / 100, func="increment") for i in range(3)]
    events += [_access(W1, T1, 0.5 + i / 100, "read", [f"/c{i}"]) for i in range(3)]
    events += [_access(W2, T2, 0.7, "read", ["/L"])]
    (result,) = lockset(run := _run(events))
    assert result.problem is not None
    assert "under 3 different locks" in result.problem
    assert "created at locked_counter.py line 8" in result.problem
    assert describe_lock("/c0", creations=lock_creations(run), labels=process_labels(run)) == (
        "the Lock created at locked_counter.py line 8 in increment() by process 1 of 2"
    )


def test_the_values_own_lock_counts_when_held_by_everyone() -> None:
    run = _run([_access(W1, T1, 0.5, "read", ["/own"]), _access(W2, T2, 0.6, "write", ["/own"])])
    (result,) = lockset(run)
    assert result.ok
    assert describe_lock("/own", creations={}, labels={}, own_lock="/own") == "counter.get_lock() (the Value's own lock)"


def test_a_value_used_by_one_worker_only_is_not_judged() -> None:
    run = _run([_access(W1, T1, 0.5, "read", []), _access(W1, T1, 0.51, "write", [])])
    assert lockset(run) == []


def _sandbox_run(tmp_path: Path, source: str, probes: list[str]) -> Run:
    path = tmp_path / "locked_counter.py"
    path.write_text(textwrap.dedent(source))
    sandbox = Sandbox(path, "locked_counter", start_method="spawn")
    action = {"kind": "call", "func": "run", "args": wire.encode([]), "kwargs": wire.encode({})}
    raw = sandbox.run(action, timeout=30, probes=probes)
    return Run(raw, label="run()", module_file="locked_counter.py")


def test_spawn_children_report_the_same_lock_and_value_and_internal_acquires_do_not_count(tmp_path: Path) -> None:
    run = _sandbox_run(
        tmp_path,
        """
        from multiprocessing import Lock, Process, Value

        def work(counter, lock):
            for _ in range(30):
                with lock:
                    counter.value += 1
            seen = counter.value  # read holding no lock (a write here could lose the other worker's updates)

        def run():
            counter = Value("i", 0)
            lock = Lock()
            procs = [Process(target=work, args=(counter, lock)) for _ in range(2)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            return counter.value
        """,
        ["locks"],
    )
    assert run.value == 60
    found = [a for a in accesses(run) if a.pid != run.main_pid]
    assert {a.pid for a in found} == {c.pid for c in run.child_processes()}
    assert len({a.value for a in found}) == 1
    locked = [a for a in found if a.line == 7]
    assert {a.count for a in locked} == {30} and len({a.locks for a in locked}) == 1
    unlocked = [a for a in found if a.line == 8]
    assert unlocked and all(a.locks == frozenset() for a in unlocked)  # the Value's internal lock is not counted
    (result,) = lockset(run)
    assert result.problem is not None and "line 8 holding no lock" in result.problem


OWN_LOCK_HELD_ELSEWHERE = """
import time
from multiprocessing import Event, Process, Value

def hold(counter, held):
    with counter.get_lock():
        held.set()
        time.sleep(0.3)
        counter.value += 5  # the value's own lock again, in the process that holds it (an RLock)

def run():
    counter = Value("i", 0)
    held = Event()
    p = Process(target=hold, args=(counter, held))
    p.start()
    held.wait()
    start = time.monotonic()
    seen = counter.value  # waits until the other process lets go of the value's own lock
    waited = time.monotonic() - start
    p.join()
    return [seen, waited >= 0.2, counter.value]
"""


def test_value_waits_for_its_own_lock_held_elsewhere_and_takes_it_again_where_held(tmp_path: Path) -> None:
    """``.value`` takes the value's own lock itself: at once when free or already this thread's, after a wait otherwise.

    The probe takes it without its wrappers when it is free (or an ``RLock`` this thread holds), and through
    them when another process holds it; either way the value is read and written under it, and the access is
    counted with the locks the student's code holds.
    """
    run = _sandbox_run(tmp_path, OWN_LOCK_HELD_ELSEWHERE, ["locks"])
    assert run.value == [5, True, 5], run.stderr
    found = accesses(run)
    (child,) = run.child_processes()
    own = {a.own_lock for a in found}
    assert len(own) == 1 and None not in own
    (own_key,) = own
    held = [a for a in found if a.pid == child.pid]
    assert {a.op for a in held} == {"read", "write"} and all(own_key in a.locks for a in held)
    waited = [a for a in found if a.pid == run.main_pid and a.line == 18]
    assert waited and all(own_key not in a.locks for a in waited)  # taken by .value itself: not the student's


def test_the_name_of_a_values_own_lock_never_raises_from_a_lock_of_the_students_class() -> None:
    """probe_locks reads a Value's own lock's name on every access: a lock class of the student's own must not raise there."""
    from types import SimpleNamespace

    from grader.inside import probe_values

    class OddLock:
        _semlock = SimpleNamespace(name="/odd")

        @property
        def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
            raise RuntimeError("no dict here")

    assert probe_values._own_lock(SimpleNamespace(_lock=OddLock())) == "/odd"
    recorded = SimpleNamespace(_semlock=SimpleNamespace(name="/made"), _grader_lock_key="/kept")
    assert probe_values._own_lock(SimpleNamespace(_lock=recorded)) == "/kept"
    assert probe_values._own_lock(SimpleNamespace(_lock=None)) is None


LOCK_PER_ACCESS = """
from multiprocessing import Lock, Process, Value

def work(counter, lock, times):
    for i in range(times):
        with {held}:
            counter.value += 1
    {after}

def run():
    counter = Value("i", 0)
    lock = Lock()
    procs = [Process(target=work, args=(counter, lock, 200)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return counter.value
"""


def _lock_events(run: Run) -> list[dict[str, Any]]:
    return [e for e in run.events if e.get("ev") in ("lk_access", "lk_summary") and e["pid"] != run.main_pid]


def test_a_lock_made_anew_for_each_access_is_a_few_records_with_every_access_counted(tmp_path: Path) -> None:
    """One site under 200 different locks: VARIED_AFTER records apart, the rest counted in one ``varied`` record."""
    from grader.inside.probe_locks import VARIED_AFTER

    run = _sandbox_run(tmp_path, LOCK_PER_ACCESS.format(held="Lock()", after="pass"), ["locks"])
    workers = {c.pid for c in run.child_processes()}
    found = [a for a in accesses(run) if a.pid in workers]
    for pid in workers:
        for op in ("read", "write"):
            mine = [a for a in found if (a.pid, a.op) == (pid, op)]
            assert sum(a.count for a in mine) == 200  # every access counted, none lost
            assert len(mine) == VARIED_AFTER + 1 and sum(a.varied for a in mine) == 1
            (varied,) = [a for a in mine if a.varied]
            assert varied.locks == frozenset() and varied.locks_seen == 200 and varied.count == 200 - VARIED_AFTER
    # Before the fold, each process wrote 2 x 200 summaries and 2 x 200 first-seen records.
    assert len(_lock_events(run)) <= 2 * 2 * 2 * (VARIED_AFTER + 1)
    (result,) = lockset(run)
    assert result.problem is not None
    assert "under 200 different locks, none of them held at every access" in result.problem
    assert "holding no lock" not in result.problem


def test_a_shared_lock_held_around_a_new_inner_lock_each_time_still_passes(tmp_path: Path) -> None:
    """The varied record keeps the locks held at every access it counts: the shared lock is still common to all."""
    run = _sandbox_run(tmp_path, LOCK_PER_ACCESS.format(held="lock, Lock()", after="pass"), ["locks"])
    assert run.value == 400
    workers = {c.pid for c in run.child_processes()}
    varied = [a for a in accesses(run) if a.pid in workers and a.varied]
    assert len(varied) == 4 and all(len(a.locks) == 1 for a in varied)  # a read and a write record per worker
    (result,) = lockset(run)
    assert result.ok and len(result.common) == 1, result.problem


def test_accesses_holding_no_lock_are_never_folded_into_a_varied_record(tmp_path: Path) -> None:
    run = _sandbox_run(tmp_path, LOCK_PER_ACCESS.format(held="Lock()", after="counter.value += 1"), ["locks"])
    workers = {c.pid for c in run.child_processes()}
    bare = [a for a in accesses(run) if a.pid in workers and not a.locks and not a.varied]
    assert {(a.pid, a.op, a.line) for a in bare} == {(pid, op, 8) for pid in workers for op in ("read", "write")}
    (result,) = lockset(run)
    assert result.problem is not None and "line 8 holding no lock" in result.problem


def test_a_varied_record_merges_its_first_seen_event_and_keeps_the_locks_common_to_both() -> None:
    run = _run([
        _new(W1, "/a", 8, func="increment"),
        _access(W1, T1, 0.5, "read", ["/L", "/a"], varied=True),
        {**_summary(W1, T1, 0.9, "read", ["/L"], count=50, last_value=99), "varied": True, "distinct": 51},
        _access(W2, T2, 0.6, "read", ["/L"]),
    ])
    (mine,) = [a for a in accesses(run) if a.pid == W1]
    assert mine.varied and mine.count == 50 and mine.locks == frozenset({"/L"}) and mine.locks_seen == 51
    (result,) = lockset(run)
    assert result.ok and result.common == frozenset({"/L"})


def test_a_process_whose_accesses_went_past_the_probes_limit_leaves_no_value_proven() -> None:
    """Fail closed: accesses the probe could not record may be the unlocked ones."""
    events = [_access(W1, T1, 0.5, "write", ["/L"]), _access(W2, T2, 0.6, "write", ["/L"])]
    (whole,) = lockset(_run(events))
    assert whole.ok
    dropped = {"ev": "lk_dropped", "pid": W2, "tid": T_MAIN, "t": 0.9, "what": "accesses", "count": 17}
    (result,) = lockset(_run([*events, dropped]))
    assert result.common == frozenset({"/L"}) and not result.ok
    assert result.problem == (
        f"process 2 of 2 (pid {W2}) made more kinds of access to shared values (value, read or write, line, thread, "
        "locks held) than the probe records, and 17 of its accesses were not recorded: no lock can be shown held at "
        "every access to counter.value"
    )
    other = {**dropped, "what": "lock operations"}
    (still,) = lockset(_run([*events, other]))
    assert still.ok


def test_the_probe_counts_the_accesses_it_could_not_record(tmp_path: Path, monkeypatch: Any) -> None:
    from grader.inside import probe_locks, probes

    path = tmp_path / "evidence.jsonl"
    monkeypatch.setattr(probes, "RECORDER", probes.Recorder(str(path)))
    monkeypatch.setattr(probe_locks, "SUMMARY_LIMIT", 3)
    for name in ("_summary", "_locksets_at"):
        monkeypatch.setattr(probe_locks, name, {})
    for name in ("_first_seen", "_accesses_dropped"):
        monkeypatch.setattr(probe_locks, name, 0)
    monkeypatch.setattr(probe_locks, "FLUSH_ALSO", [])
    for index in range(5):
        probe_locks._note_access(None, "write", index, None, key=f"value {index}")
    probe_locks._note_access(None, "write", 9, None, key="value 0")  # a kind already recorded is still counted
    probe_locks.flush()
    written = [json.loads(line) for line in path.read_text().splitlines()]
    summaries = [e for e in written if e["ev"] == "lk_summary"]
    assert [(e["value"], e["count"]) for e in summaries] == [("value 0", 2), ("value 1", 1), ("value 2", 1)]
    assert [(e["what"], e["count"]) for e in written if e["ev"] == "lk_dropped"] == [("accesses", 2)]
