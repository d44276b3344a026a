"""Checks for isolation: a thread changes the caller's global, a child process only its own copy."""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import Submission, expect, expect_no_import_side_effects, fail
from grader.evidence import Call, Run

BIG = 1_000_000  # long enough (tens of milliseconds) that reading counter before join() sees a partial count
TIMES = 500
SPAWN_HINT = (
    "under the spawn start method the child re-imports your file and receives its target by pickling: "
    "pass the module-level function (Process(target=increment, args=(times,))), no lambda or nested function"
)


def _is_int(value: Any, want: int) -> bool:
    return type(value) is int and value == want


def _times_of(call: Call) -> Any:
    if call.args:
        return call.args[0]
    return call.kwargs.get("times")


def _only_call(run: Run, name: str) -> Call:
    calls = [c for c in run.calls(name) if c.pid == run.main_pid]
    if not calls:
        fail(f"{run.label} never ran", f"{run.label} called once", "")
    return calls[0]


def _one_finished_increment(calls: list[Call], where: str) -> Call:
    if len(calls) != 1:
        fail(
            f"increment ran {len(calls)} times {where}",
            f"exactly one call increment({TIMES}) {where}",
            "call increment once, as the target, with args=(times,)",
        )
    call = calls[0]
    if not _is_int(_times_of(call), TIMES):
        fail(
            f"increment was called with {call.args!r} {call.kwargs!r} {where}",
            f"increment({TIMES}): the same `times` that was passed in",
            "pass args=(times,) (mind the comma: (times) is not a tuple)",
        )
    if call.error is not None or call.end is None:
        how = f"raised {call.error}" if call.error else "did not finish"
        fail(f"increment({TIMES}) {how} {where}", "increment runs to the end", "see the error output")
    return call


def _twice_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """increment(3), then increment(4), in one process: the check of what increment adds, and the import check's."""
    return submission.shared_drive(
        "increment_twice", 3, 4, timeout=8, label="increment(3), then increment(4)", allow_error=allow_error
    )


@pytest.mark.points(1)
def test_increment_adds_times(submission: Submission) -> None:
    """counter starts at 0 and increment(times) adds times to it, on every call."""
    run = _twice_run(submission)
    expect(
        type(run.value) is list and len(run.value) == 3 and all(_is_int(v, w) for v, w in zip(run.value, [0, 3, 7])),
        observed=f"counter was {run.value!r} before, after increment(3) and after increment(4)"
        if type(run.value) is list
        else f"the driver saw {run.value!r}",
        expected="[0, 3, 7]: counter starts at 0 and each call adds its `times`",
        hint="counter = 0 at module level; in increment: `global counter`, then a loop of `counter += 1`",
    )


@pytest.mark.points(2)
def test_thread_result_shows_the_change(submission: Submission) -> None:
    """run_in_thread returns the changed counter: threads share the caller's globals."""
    label = f"run_in_thread({BIG}) twice"
    run = submission.drive("run_in_thread_twice", BIG, timeout=10, label=label)
    want = [BIG, 2 * BIG, 2 * BIG]
    ok = type(run.value) is list and len(run.value) == 3 and all(_is_int(v, w) for v, w in zip(run.value, want))
    if not ok and type(run.value) is list and len(run.value) == 3:
        first, second, after = run.value
        fail(
            f"run_in_thread({BIG}) returned {first!r}, then {second!r}; counter was then {after!r}",
            f"{BIG}, then {2 * BIG} (the change stays), with counter {2 * BIG}",
            "start the thread, join() it, and only then return the global counter; "
            "do not compute the answer yourself",
        )
    expect(ok, observed=f"the driver saw {run.value!r}", expected=repr(want), hint="return counter")


@pytest.mark.points(3)
def test_thread_ran_increment_and_was_joined(submission: Submission) -> None:
    """increment ran on a new thread (not the caller's) that run_in_thread joined before returning."""
    label = f"run_in_thread({TIMES})"
    run = submission.call("run_in_thread", TIMES, trace=["increment", "run_in_thread"], timeout=8)
    outer = _only_call(run, "run_in_thread")
    end = outer.end if outer.end is not None else float("inf")
    if run.child_processes():
        fail(
            f"{label} started a process",
            "one threading.Thread, in the caller's own process",
            "use threading.Thread(target=increment, args=(times,)) here; processes are for run_in_process",
        )
    threads = [t for t in run.child_threads(pid=run.main_pid) if outer.start <= t.started <= end]
    if not threads:
        fail(
            f"{label} started no thread",
            "a new threading.Thread running increment(times)",
            "t = threading.Thread(target=increment, args=(times,)); t.start(); t.join(); return counter",
        )
    for thread in threads:
        if thread.joined is None:
            fail(
                f"{label} never joined thread {thread.name}",
                "the thread joined before run_in_thread returns",
                "call t.join() after t.start() and before reading counter",
            )
    calls = [c for c in run.calls("increment") if c.pid == run.main_pid]
    if any(c.tid == outer.tid for c in calls):
        fail(
            f"increment ran on the thread that called run_in_thread ({outer.thread})",
            "increment running on the new thread",
            "pass the function itself as the target: Thread(target=increment, args=(times,)); "
            "Thread(target=increment(times)) calls it at once, on the caller's thread",
        )
    idents = {t.ident for t in threads}
    mine = [c for c in calls if c.tid in idents]
    if not mine:
        targets = sorted({t.target or t.name for t in threads})
        fail(
            f"none of the threads {label} started called increment (their targets: {', '.join(targets)})",
            "the new thread runs increment(times)",
            "Thread(target=increment, args=(times,))",
        )
    call = _one_finished_increment(mine, "on the new thread")
    expect(
        call.end is not None and call.end <= end,
        observed=f"increment was still running when {label} returned",
        expected="increment finished (the thread joined) before run_in_thread returns",
        hint="join() the thread before returning counter",
    )


@pytest.mark.points(2)
def test_process_result_unchanged(submission: Submission) -> None:
    """run_in_process returns the unchanged counter: the child changed only its own copy."""
    label = f"run_in_process({TIMES})"
    run = submission.drive("run_in_process_then_counter", TIMES, timeout=10, label=label)
    ok = type(run.value) is list and len(run.value) == 2 and all(_is_int(v, 0) for v in run.value)
    expect(
        ok,
        observed=f"{label} returned {run.value[0]!r} and counter in the calling process was then {run.value[1]!r}"
        if type(run.value) is list and len(run.value) == 2
        else f"the driver saw {run.value!r}",
        expected="0 and 0: a child process has its own copy of counter, so the parent's stays 0",
        hint="run increment only in the child; return the global counter of the calling process unchanged",
    )


@pytest.mark.points(3)
def test_process_ran_increment_in_one_joined_child(submission: Submission) -> None:
    """increment ran in exactly one child process (not the parent), which was joined and exited 0."""
    label = f"run_in_process({TIMES})"
    run = submission.call(
        "run_in_process", TIMES, trace=["increment", "run_in_process"], probes=["module_globals"], timeout=10
    )
    outer = _only_call(run, "run_in_process")
    children = run.child_processes(parent=run.main_pid)
    if len(children) != 1:
        threads = run.child_threads(pid=run.main_pid)
        how = f" (it started {len(threads)} thread(s); threads share the parent's memory)" if threads else ""
        fail(
            f"{label} started {len(children)} multiprocessing process(es){how}",
            "exactly one child process running increment(times)",
            "p = multiprocessing.Process(target=increment, args=(times,)); p.start(); p.join(); return counter",
        )
    child = children[0]
    if child.joined is None:
        fail(
            f"{label} never joined its child process (pid {child.pid}), so it returned without knowing "
            "whether increment ran",
            "the child joined before run_in_process returns",
            "call p.join() after p.start() and before returning counter",
        )
    if child.exitcode != 0:
        detail = run.stderr.strip().splitlines()[-3:]
        fail(
            f"the child process exited with code {child.exitcode}"
            + (f"; its last error output: {' | '.join(detail)}" if detail else ""),
            "the child exits with code 0",
            SPAWN_HINT
            if "pickl" in run.stderr.lower()
            else "the child must end normally: an exception in it ends it with code 1 (the error output shows "
            "where), sys.exit(n) with code n",
        )
    parent_calls = [c for c in run.calls("increment") if c.pid == run.main_pid]
    if parent_calls:
        fail(
            f"increment also ran in the calling process ({len(parent_calls)} call(s)), not only in the child",
            "increment running only in the child process",
            "do not call increment yourself in run_in_process; the Process runs it",
        )
    calls = [c for c in run.calls("increment") if c.pid == child.pid]
    if not calls:
        fail(
            f"the child process (target {child.target or child.cls}) never called increment",
            "the child runs increment(times)",
            "Process(target=increment, args=(times,))",
        )
    call = _one_finished_increment(calls, "in the child process")
    if outer.end is not None and call.end is not None and call.end > outer.end:
        fail(f"increment was still running in the child when {label} returned", "the child joined first", "p.join()")
    seen = run.module_globals().get(child.pid, {}).get("counter")
    expect(
        _is_int(seen, TIMES),
        observed=f"when the child process ended, its own counter was {seen!r}",
        expected=f"{TIMES}: increment({TIMES}) changed the child's copy of counter",
        hint="increment must change the global counter (`global counter` inside increment)",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing isolation.py prints nothing and starts no thread or process."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines counter and the functions",
        hint="put demo code under `if __name__ == \"__main__\":` - under spawn the child re-imports your file",
        within=lambda: _twice_run(submission, allow_error=True),
    )
