"""Checks for locked_counter: worker processes add to one shared Value, each access under one shared Lock.

Mutual exclusion is judged from evidence, not from the total (an unlocked
counter between four processes often ends exact): the ``locks`` probe records,
in every process, which multiprocessing locks were held at each read and write
of ``counter.value``, and :func:`grader.evidence.locks.lockset` requires one lock common
to all of them.
"""

from __future__ import annotations

from typing import Any

import pytest

from grader.checks import Submission, expect, expect_no_import_side_effects, fail
from grader.evidence import Run, max_overlap
from grader.evidence.locks import Access, accesses, describe_lock, lock_creations, lockset, process_labels
from grader.evidence.pools import pool_marks

MODULE = "locked_counter.py"
# Generous: spawning four workers takes seconds on a loaded machine; a deadlock costs this per run.
RUN_TIMEOUT = 20
# The checks that judge the same call share one run of it (submission.shared_call): the defaults, the
# lockset, the read after the joins, the import and the total judge one recorded run(); the two checks of
# the workers and the total one run(3, 100).
DEFAULTS = (4, 1000)  # run()'s workers and times
DEFAULTS_LABEL = f"run() (defaults workers={DEFAULTS[0]}, times={DEFAULTS[1]})"
SIZED_RUN = (3, 100)
ALONE_SIZES = (1, 25)  # increment() alone, in one run: each call on a new counter and lock, in turn
DRIVER_TIMEOUT = 15
LOCK_HINT = (
    "create one multiprocessing.Lock() in run(), pass that same lock to every worker, and do each "
    "`counter.value += 1` inside `with lock:` (reading and writing under the lock)"
)


def _times_arg(call: Any) -> Any:
    if len(call.args) >= 3:
        return call.args[2]
    return call.kwargs.get("times")


def _require_joined(run: Run, label: str) -> None:
    """Fail unless every process run() started was joined and exited 0."""
    for child in run.child_processes(parent=run.main_pid):
        if child.joined is None:
            fail(
                f"{label} returned without joining worker {child.name} (pid {child.pid}), so it could not be "
                "checked to the end",
                "run() calls join() on every worker before it reads the total",
                "keep the Process objects in a list and join each one before returning counter.value",
            )
        if child.exitcode != 0:
            detail = run.stderr.strip().splitlines()[-3:]
            fail(
                f"worker {child.name} (pid {child.pid}) of {label} exited with code {child.exitcode}"
                + (f"; its last error output: {' | '.join(detail)}" if detail else ""),
                "every worker exits with code 0",
                "an exception in a worker ends it with code 1; the error output shows where",
            )


def _caller_writes(run: Run) -> list[Access]:
    """Writes of a shared value by run() itself (the caller's main thread) once a worker had started.

    Every write of the counter is judged, the caller's included: a total that run() wrote itself
    (``counter.value = workers * times`` after the joins) is not the workers' count.
    """
    starts = [c.started for c in run.child_processes(parent=run.main_pid)]
    if not starts:
        return []
    main_tid = {pid: e.get("tid") for pid, e in run.processes().items()}.get(run.main_pid)
    return [
        a for a in accesses(run)
        if a.pid == run.main_pid and a.tid == main_tid and a.op == "write" and a.last >= min(starts)
    ]


def _expect_no_caller_writes(run: Run, label: str) -> None:
    writes = _caller_writes(run)
    expect(
        not writes,
        observed=f"{label} returned {run.value!r}, but run() itself wrote counter.value at {writes[0].where()} "
        "after starting the workers" if writes else "",
        expected="the total counted by the workers alone: run() only reads counter.value, after joining them",
        hint="do not assign counter.value in run(); return it as the workers left it",
    )


def _worker_pids(run: Run, workers: int, times: int, label: str = "") -> list[int]:
    """The processes that ran increment, after checking they are `workers` children of the caller."""
    label = label or f"run(workers={workers}, times={times})"
    _require_joined(run, label)
    calls = run.calls("increment")
    if not calls:
        fail(
            f"{label} never called increment()",
            f"{workers} worker processes, each running increment(counter, lock, {times})",
            "start each worker with multiprocessing.Process(target=increment, args=(counter, lock, times))",
        )
    in_parent = [c for c in calls if c.pid == run.main_pid]
    if in_parent:
        threaded = [c for c in in_parent if c.thread != "MainThread"]
        fail(
            f"{label} ran increment() {len(in_parent)} time(s) in the parent process (pid {run.main_pid})"
            + (f", in threads ({threaded[0].thread}, ...)" if threaded else ", not in a worker"),
            f"increment() run only by {workers} child processes",
            "threads share the parent's process; use multiprocessing.Process, not threading.Thread"
            if threaded
            else "do not call increment() yourself in run(); pass it as the target of each Process",
        )
    children = {c.pid for c in run.child_processes(parent=run.main_pid)}
    strangers = sorted({c.pid for c in calls} - children)
    expect(
        not strangers,
        observed=f"increment() ran in process(es) {strangers} that run() did not start with multiprocessing.Process",
        expected=f"{workers} processes started by run()",
        hint="start the workers in run() with multiprocessing.Process",
    )
    pids = [c.pid for c in calls]
    expect(
        len(calls) == workers and len(set(pids)) == workers,
        observed=f"{label} ran increment() {len(calls)} time(s) in {len(set(pids))} process(es)",
        expected=f"exactly {workers} calls, each in its own process",
        hint=f"start `workers` processes, each running increment(counter, lock, times) once; {LOCK_HINT}",
    )
    wrong = [c for c in calls if _times_arg(c) != times]
    expect(
        not wrong,
        observed=f"a worker ran increment() with times={_times_arg(wrong[0])!r}" if wrong else "",
        expected=f"every worker runs increment(counter, lock, {times}): times is the count of each worker",
        hint="pass `times` unchanged to every worker; the total is workers * times",
    )
    return pids


def _alone_run(submission: Submission) -> Run:
    """increment() called alone for each of ALONE_SIZES in one run, every access's held locks recorded.

    Shared by the check of what increment adds and the check of the lock it holds. Each call gets a new
    counter and a new lock; the driver marks where each call starts, so that each access is judged
    against the lock of the call that made it.
    """
    calls = " then ".join(f"increment(counter, lock, {times})" for times in ALONE_SIZES)
    return submission.shared_drive(
        "increments_alone", list(ALONE_SIZES), label=calls, probes=["locks"], timeout=DRIVER_TIMEOUT
    )


def _alone_results(run: Run) -> list[dict[str, Any]]:
    """What the driver reported for each call of ALONE_SIZES it made (fewer if it stopped early)."""
    results = run.value if isinstance(run.value, list) else []
    return [r if isinstance(r, dict) else {} for r in results[: len(ALONE_SIZES)]]


@pytest.mark.points(1)
def test_increment_adds_times(submission: Submission) -> None:
    """increment(counter, lock, times) alone adds exactly `times` and leaves the locks released."""
    results = _alone_results(_alone_run(submission))
    for index, times in enumerate(ALONE_SIZES):
        label = f"increment(counter, lock, {times})"
        result = results[index] if index < len(results) else {}
        expect(
            result.get("lock_free") is True,
            observed=f"{label} returned still holding `lock`",
            expected="the lock released after each increment",
            hint="use `with lock:` so it is released even on an exception, or call lock.release() after every "
            "lock.acquire() (in a finally: block); a lock never released makes every other worker wait forever",
        )
        expect(
            result.get("own_lock_free") is True,
            observed=f"{label} returned still holding counter.get_lock()",
            expected="the counter's lock released after each increment",
            hint="use `with counter.get_lock():` so the lock is always released",
        )
        value = result.get("value")
        expect(
            value == times and type(value) is int,
            observed=f"counter.value was {value!r} after {label} on a counter at 0",
            expected=f"{times}",
            hint="add 1 to counter.value, `times` times: for _ in range(times): ...",
        )


@pytest.mark.points(1)
def test_increment_holds_the_lock(submission: Submission) -> None:
    """Every read and write of counter.value in increment holds `lock` (or counter.get_lock())."""
    run = _alone_run(submission)
    results = _alone_results(run)
    marks = pool_marks(run, run.main_pid)
    creations = lock_creations(run)
    labels = {run.main_pid: "the process running it"}
    mine = [a for a in accesses(run) if a.pid == run.main_pid and a.file == MODULE]
    for index, result in enumerate(results or [{}]):
        label = f"increment(counter, lock, {ALONE_SIZES[index]})"
        start = marks.get(f"call {index}")
        end = marks.get(f"call {index + 1}", marks.get("end", float("inf")))
        if start is None or not result:  # the driver marks and reports every call it makes: evidence is missing
            fail(
                f"the run of {label} has no record of the call (its mark or its result is missing)",
                "the driver's record of each call of increment, to judge its accesses by",
                "run the check again; if it stays, an instructor should look at this run's evidence",
            )
        allowed = {result.get("lock"), result.get("own_lock")} - {None}
        during = [a for a in mine if a.last >= start and a.first < end]
        expect(
            during,
            observed=f"{label} never read or wrote counter.value",
            expected="increment adds 1 to counter.value, `times` times",
            hint="use the counter it receives: counter.value += 1",
        )
        for access in during:
            if not access.locks & allowed:
                held = "holding no lock"
                if access.locks:
                    other = describe_lock(sorted(access.locks)[0], creations=creations, labels=labels)
                    held = f"holding only {other}, not the `lock` it was given"
                elif access.varied:
                    held = "holding a different lock each time, never the `lock` it was given"
                fail(
                    f"{label} {access.verb} counter.value at {access.where()} {held}"
                    + (f" ({access.count} times)" if access.count > 1 else ""),
                    "every read and write of counter.value inside `with lock:` (the lock passed to increment)",
                    "a new Lock() created inside increment excludes nothing: use the `lock` argument"
                    if access.locks or access.varied
                    else LOCK_HINT,
                )


@pytest.mark.points(2)
@pytest.mark.timeout(3 * RUN_TIMEOUT + 10)
def test_total_is_exact(submission: Submission) -> None:
    """run() returns exactly workers * times, for the defaults and for another size."""
    for make, expected in ((_defaults_run, DEFAULTS[0] * DEFAULTS[1]), (_sized_run, SIZED_RUN[0] * SIZED_RUN[1])):
        run = make(submission)
        label = run.label
        expect(
            run.value == expected and type(run.value) is int,
            observed=f"{label} returned {run.value!r}",
            expected=f"{expected} (workers * times)",
            hint="every worker adds `times`; a lost update means a read-modify-write was not under the lock, "
            "a smaller total that the workers were not all joined before reading counter.value",
        )
        _expect_no_caller_writes(run, label)


def _defaults_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """run() with its defaults, every access's held locks recorded: the lockset, the read after the joins, the total,
    the defaults and the import.

    Probe ``race`` records what ``locks`` does and widens each unlocked read-modify-write, so that the total
    it returns loses updates without the lock.
    """
    return submission.shared_call("run", probes=["race"], trace=["increment"], timeout=RUN_TIMEOUT,
                                  allow_error=allow_error)


def _sized_run(submission: Submission) -> Run:
    """run(3, 100) with its increment() calls traced: the two checks of the workers and the total."""
    workers, times = SIZED_RUN
    return submission.shared_call("run", workers=workers, times=times, probes=["race"], trace=["increment"],
                                  timeout=RUN_TIMEOUT)


@pytest.mark.points(1)
def test_run_defaults(submission: Submission) -> None:
    """run() with its defaults starts 4 workers, each running increment(counter, lock, 1000)."""
    run = _defaults_run(submission)
    _worker_pids(run, *DEFAULTS, label=DEFAULTS_LABEL)


@pytest.mark.points(4)
def test_every_access_under_one_shared_lock(submission: Submission) -> None:
    """Every read and write of counter.value by every worker holds one lock shared by all workers."""
    workers = DEFAULTS[0]
    run = _defaults_run(submission)
    _require_joined(run, DEFAULTS_LABEL)
    labels = process_labels(run)
    main_tid = {pid: e.get("tid") for pid, e in run.processes().items()}.get(run.main_pid)
    caller_writes = set(_caller_writes(run))
    concurrent = [a for a in accesses(run) if not (a.pid == run.main_pid and a.tid == main_tid)]
    if not concurrent:
        fail(
            f"{DEFAULTS_LABEL} made no access to a multiprocessing.Value outside the "
            "parent's main thread",
            "the workers add to one shared multiprocessing.Value('i', 0) through counter.value",
            "create counter = multiprocessing.Value('i', 0) in run() and pass it to every worker",
        )
    results = lockset(
        run, labels=labels, include=lambda a: a in caller_writes or not (a.pid == run.main_pid and a.tid == main_tid)
    )
    expect(
        results,
        observed=f"only one worker accessed counter.value in {DEFAULTS_LABEL}",
        expected=f"{workers} workers adding to one shared counter",
        hint="pass the same Value to every worker process",
    )
    for result in results:
        expect(
            result.ok,
            observed=result.problem or "",
            expected="every read and write of counter.value, in every worker, made while holding the one lock "
            "all workers share",
            hint=LOCK_HINT,
        )


@pytest.mark.points(2)
def test_workers_run_in_own_processes(submission: Submission) -> None:
    """`workers` distinct child processes each run increment(counter, lock, times) once."""
    workers, times = SIZED_RUN
    run = _sized_run(submission)
    _worker_pids(run, workers, times)


@pytest.mark.points(2)
def test_workers_run_at_once(submission: Submission) -> None:
    """The workers are all started before the first is joined, and none is left running."""
    workers, times = SIZED_RUN
    run = _sized_run(submission)
    pids = set(_worker_pids(run, workers, times))
    children = [c for c in run.child_processes(parent=run.main_pid) if c.pid in pids]
    end = run.phase_time("return") or float("inf")
    peak = max_overlap((c.started, c.joined if c.joined is not None else end) for c in children)
    order = sorted(
        [(c.started, f"start {c.name}") for c in children] + [(c.joined, f"join {c.name}") for c in children if c.joined]
    )
    expect(
        peak >= workers,
        observed=f"at most {peak} of the {workers} workers were running at the same time; run() did: "
        f"{', '.join(step for _, step in order[:8])}",
        expected=f"all {workers} workers started before the first join(), so they run at once",
        hint="start every worker in one loop, then join them all in a second loop",
    )
    alive = run.processes_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} process(es) still running when run() returned",
        expected="no process left running",
        hint="join every process you start",
    )


@pytest.mark.points(1)
def test_returns_counter_value_after_join(submission: Submission) -> None:
    """run() returns counter.value as read after every worker was joined."""
    run = _defaults_run(submission)
    main_tid = {pid: e.get("tid") for pid, e in run.processes().items()}.get(run.main_pid)
    in_main = [a for a in accesses(run) if a.pid == run.main_pid and a.tid == main_tid]
    shared = {a.value for a in accesses(run) if a not in in_main}
    reads = [a for a in in_main if a.op == "read" and a.value in shared]
    joins: list[float | None] = [c.joined for c in run.child_processes(parent=run.main_pid)]
    if not joins:  # workers in threads lose points elsewhere; here only the order of join and read counts
        joins = [t.joined for t in run.child_threads(pid=run.main_pid)]
    label = DEFAULTS_LABEL
    _expect_no_caller_writes(run, label)
    if not reads:
        fail(
            f"{label} returned {run.value!r} without reading counter.value in the parent",
            "run() returns counter.value, the total the workers counted",
            "return counter.value after joining the workers, not a number computed in run()",
        )
    if not joins or None in joins:
        fail(
            f"{label} read counter.value at {reads[-1].where()} while worker(s) had not been joined",
            "counter.value read after every worker was joined",
            "join every worker before reading counter.value",
        )
    last_join = max(j for j in joins if j is not None)
    after = [a for a in reads if a.last >= last_join]
    if not after:
        fail(
            f"{label} read counter.value at {reads[-1].where()} before the last worker was joined",
            "counter.value read after every worker was joined",
            "join every worker first, then return counter.value",
        )
    expect(
        any(a.last_value == run.value and type(run.value) is int for a in after),
        observed=f"{label} returned {run.value!r}, but counter.value read after the joins was "
        f"{after[-1].last_value!r}",
        expected="run() returns counter.value",
        hint="return counter.value itself",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing locked_counter.py prints nothing and starts no process or thread."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="put the call to run() under `if __name__ == \"__main__\":` - under spawn every worker re-imports "
        "your file",
        within=lambda: _defaults_run(submission, allow_error=True),
    )
