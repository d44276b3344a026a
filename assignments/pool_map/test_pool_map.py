"""Checks for pool_map: a multiprocessing.Pool map that keeps order, passes errors on and cleans up.

The grader hands ``parallel_map`` its own task (``grader_inside.probe_pools.task``,
which returns ``3 * x + 1``) through the drivers in drivers.py. The task records
which process ran each item and when; it waits until tasks have started in two
worker processes (so a real pool always shows overlapping workers and a
one-process run never does) and holds the first item back until every other
item is done (so results collected in completion order are always out of order).
Checks that judge the same call share one run (submission.shared_drive).
"""

from __future__ import annotations

import pytest

from grader.checks import Submission, expect, expect_no_import_side_effects, fail, first_difference
from grader.evidence import Call, Opaque, Run, max_overlap
from grader.evidence.pools import PoolLife, PoolTask, pool_marks, pool_tasks, pools, worker_peak

ITEMS = [6, 2, 9, 4, 7, 2, 8, 3]  # 2 twice: every item has its result, repeats included
DEFAULT_WORKERS = 4  # parallel_map(func, items, workers=4) and sum_of_squares(n, workers=4)
# sum_of_squares(n, workers) for each [n, workers]; None: called without workers, its default
SUMS: list[tuple[int, int | None]] = [(0, 2), (5, 2), (20, None)]
TASK_RUN_TIMEOUT = 24
ORDER_HINT = (
    "pool.map (or imap, or apply_async followed by .get() on each result in the order of items) keeps the "
    "order of items; imap_unordered, and collecting results as they complete, return them in the order the "
    "tasks happened to finish"
)


def _expected(items: list[int]) -> list[int]:
    return [3 * x + 1 for x in items]


def _short(values: object, limit: int = 12) -> str:
    if isinstance(values, list) and len(values) > limit:
        return "[" + ", ".join(repr(v) for v in values[:limit]) + ", ...]"
    return repr(values)


def _label(items: list[int], workers: int | None) -> str:
    if workers is None:
        return f"parallel_map(task, {_short(items)}) (workers left to its default)"
    return f"parallel_map(task, {_short(items)}, workers={workers})"


def _sum_label(n: int, workers: int | None) -> str:
    return f"sum_of_squares({n})" if workers is None else f"sum_of_squares({n}, {workers})"


def _run_tasks(
    submission: Submission,
    items: list[int],
    workers: int | None,
    *,
    meet: int = 2,
    hold_first: bool = True,
    handed_out: bool = False,
) -> Run:
    return submission.shared_drive(
        "map_task",
        items,
        workers,
        meet=meet,
        hold_first=hold_first,
        handed_out=handed_out,
        probes=["pools"],
        timeout=TASK_RUN_TIMEOUT,
        label=_label(items, workers),
    )


def _call_window(run: Run) -> tuple[float | None, float | None]:
    return run.phase_time("call"), run.phase_time("return")


def _main_pools(run: Run) -> list[PoolLife]:
    return [p for p in pools(run) if p.pid == run.main_pid]


def _describe_pools(found: list[PoolLife]) -> str:
    if not found:
        return "no multiprocessing Pool was created"
    return ", ".join(f"{p.cls.rsplit('.', 1)[-1]}(processes={p.processes})" for p in found)


@pytest.mark.points(1)
def test_square(submission: Submission) -> None:
    """square(x) returns x * x."""
    xs = [7, -3, 0, 12, 1.5]
    run = submission.drive("squares", xs, timeout=10, label="square(x) for x in " + repr(xs))
    expected = [x * x for x in xs]
    got = run.value
    difference = first_difference(got, expected) if isinstance(got, list) else f"got {got!r}"
    expect(
        difference is None,
        observed=f"square(x) for x in {xs} gave {got!r}: {difference}",
        expected=f"{expected}",
        hint="return x * x",
    )


@pytest.mark.points(3)
def test_results_in_input_order(submission: Submission) -> None:
    """parallel_map returns func(item) for every item, in the order of items, when tasks finish out of order."""
    workers = 2
    run = _run_tasks(submission, ITEMS, workers)
    expected = _expected(ITEMS)
    got = run.value
    label = _label(ITEMS, workers)
    if type(got) is not list:
        fail(
            f"{label} returned {got!r}, a {type(got).__name__ if not isinstance(got, Opaque) else got.type_name}",
            f"a list: {expected}",
            "return a list, for example the list pool.map(func, items) gives; an iterator from imap must be "
            "turned into a list (list(...)) before the pool is closed",
        )
    if got == expected and all(type(v) is int for v in got):
        return
    finished = [t.item for t in sorted(pool_tasks(run), key=lambda t: t.end if t.end is not None else float("inf"))]
    if sorted(got, key=repr) == sorted(expected, key=repr):
        in_completion_order = got == _expected(finished) if all(type(i) is int for i in finished) else False
        fail(
            f"{label} returned {_short(got)}"
            + (
                f", the results in the order the tasks finished (items {_short(finished)}), "
                f"not in the order of items"
                if in_completion_order
                else ", the right results in the wrong order"
            ),
            f"{_short(expected)}: the result for items[i] at position i, whichever task finishes first "
            f"(the grader's task for {ITEMS[0]} finished last on purpose)",
            ORDER_HINT,
        )
    squares = [x * x for x in ITEMS]
    hint = "apply func to every item and return what func returns"
    if sorted(got, key=repr) == sorted(squares, key=repr):
        hint = "parallel_map must call the func it is given, not square"
    fail(
        f"{label} returned {_short(got)}: {first_difference(got, expected)}",
        f"{_short(expected)} (the grader's task returns 3 * x + 1)",
        hint,
    )


@pytest.mark.points(3)
def test_work_spread_over_worker_processes(submission: Submission) -> None:
    """The items run in at least two worker processes of the pool at the same time, never in the caller."""
    workers = 2
    run = _run_tasks(submission, ITEMS, workers)
    label = _label(ITEMS, workers)
    tasks = pool_tasks(run)
    if not tasks:
        fail(
            f"{label} never called the task it was given",
            "the task called once for every item, in the pool's worker processes",
            "hand func and items to the pool: pool.map(func, items)",
        )
    created = _main_pools(run)
    in_caller = [t for t in tasks if t.pid == run.main_pid]
    if in_caller:
        threads = sorted({t.thread for t in in_caller})
        if any(p.kind == "threads" for p in created) or threads != ["MainThread"]:
            fail(
                f"{len(in_caller)} of {len(tasks)} tasks ran in threads ({', '.join(threads[:4])}) of the process "
                f"that called parallel_map; {_describe_pools(created)}",
                "every task runs in a worker process of a multiprocessing.Pool",
                "threads (ThreadPool, ThreadPoolExecutor) share one process and its GIL; use "
                "multiprocessing.Pool(workers)",
            )
        fail(
            f"{len(in_caller)} of {len(tasks)} tasks ran in the process that called parallel_map itself "
            "(one after another, no pool)",
            "every task runs in a worker process of a multiprocessing.Pool",
            "create a multiprocessing.Pool(workers) and let it call func: pool.map(func, items)",
        )
    pids = sorted({t.pid for t in tasks})
    one_by_one = f"; {WAITED_FOR_EACH}" if _waited_for_each(tasks) else ""
    if len(pids) < 2:
        meet = next((t.waited("meet") for t in tasks if t.waited("meet")), {})
        waited = f"; the first task waited {meet['seconds']:.0f} s for a task to start in a second process" if meet.get(
            "outcome"
        ) == "gave_up" else one_by_one
        fail(
            f"all {len(tasks)} tasks ran in one worker process (pid {pids[0]}){waited}; {_describe_pools(created)}",
            f"the tasks spread over at least two of the {workers} worker processes",
            "create the pool with the number of workers asked for, Pool(workers), and give it all the items "
            "at once (pool.map(func, items)) rather than one item at a time",
        )
    start, end = _call_window(run)
    peak = worker_peak(run, run.main_pid, start, end)
    expect(
        peak <= workers,
        observed=f"{peak} worker processes were running at the same time for {label}; {_describe_pools(created)}",
        expected=f"at most workers={workers} worker processes",
        hint="create the pool with processes=workers, not a fixed number or the number of CPUs",
    )
    overlap = _overlap_across_processes(tasks)
    expect(
        overlap >= 2,
        observed=f"the tasks ran in {len(pids)} processes but one after another (at most {overlap} at a time)"
        f"{one_by_one}; {_describe_pools(created)}",
        expected="tasks running at the same time in at least two worker processes",
        hint="create one pool and give it every item at once (pool.map(func, items)); do not create a pool or "
        "wait for a result per item",
    )


WAITED_FOR_EACH = "parallel_map waited for each task's result before it handed out the next item"


def _waited_for_each(tasks: list[PoolTask]) -> bool:
    """Whether a task stopped waiting for a second process because the caller was blocked on it (``caller_waits``)."""
    return any(t.waited("meet").get("outcome") == "caller_waits" for t in tasks)


def _overlap_across_processes(tasks: list[PoolTask]) -> int:
    spans = [(t.start, t.end if t.end is not None else float("inf")) for t in tasks]
    peak = max_overlap(spans)
    if peak >= 2 and len({t.pid for t in tasks}) >= 2:
        for a in tasks:
            for b in tasks:
                if a.pid != b.pid and a.start <= b.start < (a.end if a.end is not None else float("inf")):
                    return peak
        return 1
    return peak


@pytest.mark.points(2)
def test_pool_has_workers_processes(submission: Submission) -> None:
    """The pool has exactly `workers` worker processes: 2 when asked for 2, 4 by default.

    Two different counts, so a pool sized by the number of CPUs (Pool() without
    processes) is caught on every machine, whatever its number of CPUs. A process
    executor that starts its workers only as it finds none idle is handed every item
    before a task ends (``handed_out``), so it starts as many as it may on every run,
    however fast its caller hands the items out.
    """
    runs = [
        (2, 2, _run_tasks(submission, ITEMS, 2)),
        (None, DEFAULT_WORKERS, _run_tasks(submission, ITEMS, None, meet=0, hold_first=False, handed_out=True)),
    ]
    peaks = []
    for workers, wanted, run in runs:
        start, end = _call_window(run)
        peaks.append((_label(ITEMS, workers), wanted, worker_peak(run, run.main_pid, start, end), run))
    wrong = [(label, wanted, peak, run) for label, wanted, peak, run in peaks if peak != wanted]
    if not wrong:
        return
    if any(peak == 0 for _, _, peak, _ in wrong):
        hint = "run the items in a multiprocessing.Pool(workers): threads and plain loops start no worker process"
    elif any(_waited_for_each(pool_tasks(run)) for *_, run in wrong):
        hint = (f"give the pool every item at once (pool.map(func, items)): {WAITED_FOR_EACH}, so no second worker "
                "had anything to do")
    elif len({peak for _, _, peak, _ in peaks}) == 1:
        hint = ("pass workers on to the pool: Pool(workers) or Pool(processes=workers), not a fixed number or "
                "the number of CPUs (Pool() without processes)")
    else:
        hint = f"def parallel_map(func, items, workers={DEFAULT_WORKERS}): the pool has `workers` processes, 4 by default"
    fail(
        "; ".join(f"{label} ran {peak} worker process(es) at once ({_describe_pools(_main_pools(run))})"
                  for label, _, peak, run in wrong),
        f"a pool of exactly `workers` processes: 2 for workers=2, {DEFAULT_WORKERS} when workers is not given",
        hint,
    )


@pytest.mark.points(2)
def test_exception_propagates(submission: Submission) -> None:
    """An exception raised by func in a worker reaches the caller of parallel_map, type and message intact."""
    items = [5, 3, 8, 1, 9, 4]
    workers = 2
    label = f"parallel_map(task, {items}, workers={workers})"
    run = submission.drive(
        "map_failing", items, [8], workers, probes=["pools"], timeout=15, allow_error=True, label=label
    )
    message = "task refused item 8 (raised on purpose by the grader)"
    if run.returned:
        fail(
            f"{label} returned {_short(run.value)} although the task raised ValueError for item 8",
            f"parallel_map raises the task's exception: ValueError: {message}",
            "do not catch exceptions inside parallel_map; pool.map and AsyncResult.get() re-raise the task's "
            "exception in the caller",
        )
    if run.error is None:
        submission.require_returned(run)
        return
    err = run.error
    expect(
        err.type == "ValueError" and err.message == message,
        observed=f"{label} raised {err.summary()}",
        expected=f"the task's own exception: ValueError: {message}",
        hint="let the exception pass: do not catch it and raise another one, or change its message",
    )


@pytest.mark.points(2)
def test_no_workers_left_after_return(submission: Submission) -> None:
    """The pool is shut down by parallel_map itself: its workers are gone when it returns."""
    workers = None
    run = _run_tasks(submission, ITEMS, workers, meet=0, hold_first=False)
    label = _label(ITEMS, workers)
    alive = run.processes_alive_at_return()
    expect(
        not alive,
        observed=f"{len(alive)} worker process(es) of the pool were still running when {label} returned",
        expected="no worker process left running",
        hint="use `with Pool(workers) as pool:` around the map, or call pool.close() and pool.join() "
        "(in a finally block) before returning",
    )
    started = {c.pid for c in run.child_processes()}
    leftovers = [p for p in run.leftovers if p.get("pid") in started]
    expect(
        not leftovers,
        observed=f"{len(leftovers)} worker process(es) were still running after the program ended",
        expected="no worker process left running",
        hint="shut the pool down inside parallel_map: `with Pool(workers) as pool:` or close() and join()",
    )
    end = run.phase_time("return")
    for pool in _main_pools(run):
        if pool.kind != "processes":
            continue
        stopped = pool.shut_down
        if stopped is not None and (end is None or stopped <= end):
            continue
        if pool.closed is not None and pool.joined is None:
            why = "pool.close() was called but never pool.join(), so parallel_map did not wait for the workers"
        elif pool.unclosed is not None:
            why = (
                "it was never closed: its workers stopped only because Python happened to garbage-collect the "
                "pool object (\"unclosed running multiprocessing pool\")"
            )
        else:
            why = "it was never closed, terminated or joined by parallel_map"
        fail(
            f"the {pool.cls.rsplit('.', 1)[-1]}(processes={pool.processes}) created for {label}: {why}",
            "parallel_map shuts its pool down before returning",
            "use `with Pool(workers) as pool:` (it terminates the pool on exit), or call pool.close() then "
            "pool.join() in a finally block",
        )
    children = run.child_processes(parent=run.main_pid)
    if not _main_pools(run):
        unjoined = [c for c in children if c.joined is None]
        expect(
            not unjoined,
            observed=f"{len(unjoined)} worker process(es) started for {label} were never joined",
            expected="every worker process joined before parallel_map returns",
            hint="use `with Pool(workers) as pool:` around the map",
        )


@pytest.mark.points(2)
def test_sum_of_squares(submission: Submission) -> None:
    """sum_of_squares(n) is right for several n and is computed with parallel_map(square, ...)."""
    run = _sums_run(submission)
    got = run.value
    for index, (n, workers) in enumerate(SUMS):
        value = got[index] if isinstance(got, list) and index < len(got) else None
        expected = sum(x * x for x in range(n))
        expect(
            type(value) is int and value == expected,
            observed=f"{_sum_label(n, workers)} returned {value!r}",
            expected=f"{expected} (sum(x * x for x in range({n})))",
            hint="add up the squares of 0, 1, ..., n - 1 (range(n) stops before n)",
        )
    for n, workers, maps, squared in _sum_windows(run):
        if n == 0:
            continue
        label = _sum_label(n, workers)
        if not maps:
            fail(
                f"{label} never called parallel_map",
                "sum_of_squares calls parallel_map(square, range(n), workers) and adds up the results",
                "compute the squares with parallel_map(square, ...), not in sum_of_squares itself",
            )
        funcs = [repr(c.args[0]) if c.args else repr(c.kwargs.get("func")) for c in maps]
        expect(
            any(text.startswith("<function square ") for text in funcs),
            observed=f"{label} called parallel_map with {', '.join(funcs)} as func",
            expected="parallel_map(square, ...): the module's square function",
            hint="pass square itself (not a lambda or another function) as func",
        )
        expect(
            squared == list(range(n)),
            observed=f"during {label}, square was called for {_short(squared)}",
            expected=f"square called once for each of 0..{n - 1}, by the pool",
            hint="map square over range(n) with parallel_map and add up what it returns",
        )


@pytest.mark.points(1)
def test_sum_of_squares_hands_workers_on(submission: Submission) -> None:
    """sum_of_squares(n, workers) calls parallel_map with its `workers` (4 by default)."""
    run = _sums_run(submission)
    for n, workers, maps, _ in _sum_windows(run):
        wanted = DEFAULT_WORKERS if workers is None else workers
        given = [c.args[2] if len(c.args) > 2 else c.kwargs.get("workers", "not given") for c in maps]
        # parallel_map's own default is 4 too: leaving workers out is right only when it is 4
        wrong = [w for w in given if not (w == wanted and type(w) is int) and not (w == "not given" and wanted == 4)]
        expect(
            not wrong,
            observed=f"{_sum_label(n, workers)} called parallel_map with workers={wrong[0]!r}" if wrong else "",
            expected=f"parallel_map(square, ..., {wanted}): the workers sum_of_squares was given"
            + (f" (its default, {DEFAULT_WORKERS})" if workers is None else ""),
            hint="def sum_of_squares(n, workers=4): and pass workers on: parallel_map(square, range(n), workers)",
        )


def _sums_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """sum_of_squares(n, workers) for each of SUMS, in one run shared by the two checks of sum_of_squares and the import's."""
    return submission.shared_drive(
        "sums_of_squares",
        SUMS,
        trace=["parallel_map", "square"],
        timeout=20,
        label="; ".join(_sum_label(n, w) for n, w in SUMS),
        allow_error=allow_error,
    )


def _sum_windows(run: Run) -> list[tuple[int, int | None, list[Call], list[int]]]:
    """Per call of SUMS: n, workers, the parallel_map calls made during it, and the ints square was called with."""
    marks = pool_marks(run, run.main_pid)
    bounds = [marks.get(f"n={n}") for n, _ in SUMS] + [marks.get("end")]
    windows = []
    for index, (n, workers) in enumerate(SUMS):
        start, end = bounds[index], bounds[index + 1]
        if start is None or end is None:
            windows.append((n, workers, [], []))
            continue
        maps = [c for c in run.calls("parallel_map") if c.pid == run.main_pid and start <= c.start < end]
        squared = sorted(
            c.args[0] for c in run.calls("square") if start <= c.start < end and c.args and type(c.args[0]) is int
        )
        windows.append((n, workers, maps, squared))
    return windows


@pytest.mark.points(1)
def test_empty_list(submission: Submission) -> None:
    """parallel_map(func, [], workers) returns an empty list."""
    run = _run_tasks(submission, [], 2, meet=0, hold_first=False)
    expect(
        type(run.value) is list and run.value == [],
        observed=f"parallel_map(task, [], workers=2) returned {run.value!r}",
        expected="[] (an empty list)",
        hint="with no items there is nothing to map: pool.map(func, []) returns [] - make sure nothing "
        "divides by len(items) or creates Pool(0)",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing pool_map.py prints nothing and starts no pool, process or thread."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines functions",
        hint="create the Pool inside parallel_map, not at module level, and keep example calls under "
        "`if __name__ == \"__main__\":` - under spawn every worker re-imports your file",
        within=lambda: _sums_run(submission, allow_error=True),
    )
