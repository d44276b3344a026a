"""Checks for fifo_queue: a producer and a consumer process linked by a multiprocessing.Queue.

producer() and consumer() are first run alone by the drivers (each in a child
process, with queues the grader reads), then run_pipeline() as a whole. In the
pipeline runs the ``paced_producer``/``slow_producer`` probes make every put of
the producer wait until a reader has started, then 0.05 s (0.2 s) before each
item: a consumer that polls ``empty()``/``qsize()`` finds the queue empty and
stops early on every run, whatever the machine's load. With ``slow_producer``, a
consumer that gives up when its ``get(timeout=...)`` ends empty does too: the
second item waits until such a ``get`` has ended empty once.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from grader.checks import (
    Submission,
    brief,
    expect,
    expect_children_joined,
    expect_no_import_side_effects,
    fail,
    same,
    same_items,
    sequence_problem,
)
from grader.evidence import Call, Opaque, Run

MIXED: list[Any] = [42, "b", 3.5, (1, "x"), {"k": [1, 2]}, 0, "", -7, "a", [3, 1]]
CONSUMED: list[Any] = ["first", 7, (2, 3), 0.5, {"n": 1}, 0, "last"]
AFTER = "put after the sentinel"
# Items that can be compared, unsorted, one of them twice: a pipeline that sorts, reverses or drops
# duplicates whenever the items allow it returns something else (MIXED cannot be sorted or hashed).
SLOW: list[Any] = [3, 1, 3, 2]
LARGE: list[Any] = [letter * 1_000_000 for letter in "zxy"]
QUEUE_TYPES = ("multiprocessing.queues.Queue", "multiprocessing.queues.JoinableQueue")
DRIVER_LIMIT = 5.0
FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')

SENTINEL_HINT = "compare each item with SENTINEL (`if item is SENTINEL: break`) and stop at the first one"
POLLING_HINT = (
    "do not decide that the work is over from queue.empty() or queue.qsize(): the queue is empty whenever the "
    "consumer is faster than the producer; block in get() and stop only at the sentinel"
)
TIMEOUT_HINT = (
    "a get(timeout=...) that raises queue.Empty does not mean the work is over: the producer may just be slow; "
    "block in get() (or try again after Empty) and stop only at the sentinel"
)


def _child_trouble(run: Run, name: str, who: str, exitcode: Any) -> None:
    """Fail if the driver's child process ``name`` (running ``who``) ended with an error."""
    if exitcode in (0, None):
        return
    lines = run.stderr.splitlines()
    header = f"Process {name}:"
    if header in lines:  # multiprocessing prints "Process <name>:" before a child's traceback
        lines = lines[lines.index(header) + 1 :]
        lines = lines[: next((i for i, line in enumerate(lines) if line.startswith("Process ")), len(lines))]
    error = next((line.strip() for line in reversed(lines) if line.strip() and not line.startswith(" ")), "")
    where = ""
    for index, line in enumerate(lines):
        frame = FRAME.match(line)
        if frame and frame.group(1).replace("\\", "/").endswith("/" + run.module_file):
            source = lines[index + 1].strip() if index + 1 < len(lines) else ""
            where = f" ({run.module_file}, line {frame.group(2)}, in {frame.group(3)}" + (f": {source})" if source else ")")
    fail(
        f"the process running {who} ended with exit code {exitcode}" + (f": {error}{where}" if error else ""),
        f"{who} runs to the end without an error",
        "the line shown is where the exception came from in your code",
    )


def _alone(submission: Submission, which: str) -> tuple[Run, dict[str, Any]]:
    """producer() and consumer() each run alone by the driver (one run, shared by their two checks)."""
    run = submission.shared_drive(
        "alone", MIXED, CONSUMED, AFTER, DRIVER_LIMIT, timeout=12, label="producer() and consumer() alone"
    )
    return run, run.value[which]


def _pipeline_hint(problem: str) -> str:
    if "reverse" in problem:
        return "a multiprocessing.Queue is first in, first out: forward each item as you get it and append it to the end"
    if "sorted" in problem:
        return "do not sort the items: the pipeline keeps the order in which they were put"
    if "sentinel" in problem:
        return "stop at the sentinel without adding it to the list you return"
    if "but the first" in problem:
        return "every get() takes an item off the queue: do not call get() before the loop or twice per item"
    if "missing" in problem:
        return POLLING_HINT
    return "the consumer forwards every item it gets, in order; run_pipeline returns them in the order it gets them"


def _mixed_run(submission: Submission, *, allow_error: bool = False) -> Run:
    """The pipeline run with mixed items, shared by the checks of its result, its processes, their joins and the import."""
    return submission.shared_call(
        "run_pipeline", MIXED, trace=["producer", "consumer"], probes=["paced_producer"], timeout=12, allow_error=allow_error
    )


def _check_pipeline(run: Run, items: list[Any], what: str) -> None:
    problem = sequence_problem(run.value, items)
    expect(
        problem is None,
        observed=f"run_pipeline(items) with {what} returned {problem}",
        expected=f"exactly the {len(items)} items, in the order given: {brief(items, 120)}",
        hint=_pipeline_hint(problem or ""),
    )


@pytest.mark.points(2)
def test_producer_puts_items_then_sentinel(submission: Submission) -> None:
    """producer(queue, items) puts every item in order, then exactly one sentinel (None)."""
    run, out = _alone(submission, "producer")
    put = out["put"]
    if not out["ended"]:
        fail(
            f"producer(queue, items) had not returned {DRIVER_LIMIT:g} s after it started "
            f"(it had put {len(put)} item(s))",
            "producer puts the items and the sentinel, then returns",
            "put each item once, then SENTINEL, and return; the producer never waits for anything",
        )
    _child_trouble(run, "producer", "producer(queue, items)", out["exitcode"])
    expected = [*MIXED, None]
    if same_items(put, MIXED):
        fail(
            f"producer(queue, items) put the {len(MIXED)} items but no sentinel after them",
            "the items in order, then None (SENTINEL)",
            "after the loop, queue.put(SENTINEL): the consumer stops only when it sees it",
        )
    if same_items(put, [*MIXED, None, None]):
        fail(
            "producer(queue, items) put the sentinel twice",
            "the items in order, then one None",
            "put SENTINEL once, after the loop (not inside it as well)",
        )
    problem = sequence_problem(put, expected)
    expect(
        problem is None,
        observed=f"producer(queue, {brief(MIXED, 40)}) put {problem}",
        expected=f"the {len(MIXED)} items in the order given, then one None",
        hint=_pipeline_hint(problem or "") if problem and "sentinel" not in problem else SENTINEL_HINT,
    )


@pytest.mark.points(2)
def test_consumer_forwards_until_sentinel(submission: Submission) -> None:
    """consumer(queue, results) forwards the items in order, then the sentinel, and takes nothing after it."""
    run, out = _alone(submission, "consumer")
    forwarded, left = out["forwarded"], out["left"]
    waiting = f"the queue held {len(CONSUMED)} items, then None, then {AFTER!r}"
    if not out["ended"]:
        fail(
            f"consumer(queue, results) had not returned {DRIVER_LIMIT:g} s after it started, though {waiting}; "
            f"it had put {len(forwarded)} item(s) on results: {brief(forwarded, 100)}",
            "consumer returns as soon as it takes the sentinel None",
            SENTINEL_HINT,
        )
    _child_trouble(run, "consumer", "consumer(queue, results)", out["exitcode"])
    if same_items(forwarded, CONSUMED):
        fail(
            f"consumer(queue, results) forwarded the {len(CONSUMED)} items but put no sentinel on results",
            "the items in order on results, then None",
            "after the loop, results.put(SENTINEL): that is how run_pipeline knows the results are complete",
        )
    if same_items(forwarded, [*CONSUMED, None, None]):
        fail(
            "consumer(queue, results) put the sentinel on results twice",
            "the items in order on results, then one None",
            "do not forward the sentinel inside the loop: break at it, and put SENTINEL once after the loop",
        )
    problem = sequence_problem(forwarded, [*CONSUMED, None])
    expect(
        problem is None,
        observed=f"{waiting}; consumer(queue, results) put on results {problem}",
        expected=f"the {len(CONSUMED)} items in order, then one None",
        hint=_pipeline_hint(problem or "") if problem and "sentinel" not in problem else SENTINEL_HINT,
    )
    expect(
        bool(left) and same(left[0], AFTER),
        observed=f"consumer(queue, results) also took {AFTER!r}, which was put on the queue after the sentinel",
        expected="the consumer stops taking items at the sentinel; what follows it stays on the queue",
        hint="break out of the loop as soon as you get SENTINEL, without another get() or a final drain of the queue",
    )


@pytest.mark.points(2)
def test_pipeline_keeps_fifo_order(submission: Submission) -> None:
    """run_pipeline returns exactly the items, in FIFO order, for unsorted items of mixed types."""
    _check_pipeline(_mixed_run(submission), MIXED, "10 unsorted items of mixed types")


@pytest.mark.points(1)
def test_pipeline_empty_list(submission: Submission) -> None:
    """run_pipeline([]) returns an empty list."""
    run = submission.call("run_pipeline", [], probes=["paced_producer"], timeout=12)
    _check_pipeline(run, [], "no items (an empty list)")


@pytest.mark.points(2)
def test_pipeline_slow_producer(submission: Submission) -> None:
    """run_pipeline returns every item when the producer is slow (a consumer must not poll empty() or give up on a timeout)."""
    run = submission.call("run_pipeline", SLOW, probes=["slow_producer"], timeout=12)
    problem = sequence_problem(run.value, SLOW)
    stalled = any(isinstance(e.get("stalled"), (int, float)) for e in run.of("queue_paced"))
    producer = "a producer that puts one item every 0.2 s" + (
        " and held its second item until a get(timeout=...) of the consumer's had given up" if stalled else "")
    lost = bool(problem) and ("missing" in problem or "item(s) where" in problem)
    expect(
        problem is None,
        observed=f"with {producer}, run_pipeline(items) returned {problem}",
        expected=f"all {len(SLOW)} items in order: {brief(SLOW)}, however slow the producer",
        hint=(TIMEOUT_HINT if stalled else POLLING_HINT) if lost else _pipeline_hint(problem or ""),
    )


@pytest.mark.points(2)
def test_pipeline_large_items(submission: Submission) -> None:
    """run_pipeline passes three items of 1 MB each, in order, without a deadlock."""
    run = submission.call("run_pipeline", LARGE, probes=["paced_producer"], timeout=12)
    problem = sequence_problem(run.value, LARGE)
    expect(
        problem is None,
        observed=f"with three strings of 1 MB each, run_pipeline(items) returned {problem}",
        expected="the three strings, in the order given ('zzz...', 'xxx...', 'yyy...')",
        hint=_pipeline_hint(problem or ""),
    )


@pytest.mark.points(2)
def test_producer_and_consumer_in_two_child_processes(submission: Submission) -> None:
    """producer and consumer each ran in its own child process, not in the caller and not in a thread."""
    run = _mixed_run(submission)
    children = {child.pid: child for child in run.child_processes()}
    where = {}
    for name in ("producer", "consumer"):
        calls = run.calls(name)
        if not calls:
            fail(
                f"run_pipeline never called {name}()",
                f"{name}() running in a child process of its own",
                f"start it with multiprocessing.Process(target={name}, args=(...))",
            )
        if len(calls) > 1:
            fail(
                f"{name}() ran {len(calls)} times during one run_pipeline() call",
                f"one {name}() in one child process",
                f"start a single process with target={name}",
            )
        call = calls[0]
        if call.pid == run.main_pid:
            if call.thread != "MainThread":
                fail(
                    f"{name}() ran in a thread ({call.thread}) of the process that called run_pipeline",
                    f"{name}() in a child process started with multiprocessing.Process",
                    "threads share their process: use multiprocessing.Process, and a multiprocessing.Queue between them",
                )
            fail(
                f"{name}() ran in the process that called run_pipeline, not in a child process",
                f"{name}() in a child process started with multiprocessing.Process",
                f"do not call {name}() yourself in run_pipeline; pass it as the target of a multiprocessing.Process",
            )
        if call.pid not in children:
            fail(
                f"{name}() ran in process {call.pid}, which was not started with multiprocessing.Process",
                f"{name}() in a child process started with multiprocessing.Process",
                f"start it with multiprocessing.Process(target={name}, args=(...))",
            )
        where[name] = children[call.pid]
    expect(
        where["producer"].pid != where["consumer"].pid,
        observed=f"producer() and consumer() both ran in the same child process ({where['producer'].name})",
        expected="two child processes: one running producer(), one running consumer(), at the same time",
        hint="start two processes: Process(target=producer, ...) and Process(target=consumer, ...)",
    )


@pytest.mark.points(1)
def test_processes_joined_nothing_left_running(submission: Submission) -> None:
    """Both child processes are joined and exit with code 0; nothing is left running."""
    expect_children_joined(
        _mixed_run(submission),
        "run_pipeline",
        wanted="two child processes, both joined",
        start_hint="start the producer and the consumer with multiprocessing.Process, then join() them",
        join_expected="run_pipeline calls join() on every process it started",
        join_hint="after taking every result off the results queue, call join() on both processes",
    )


@pytest.mark.points(1)
def test_sentinel_is_none(submission: Submission) -> None:
    """The module defines SENTINEL = None."""
    run, sentinel = _alone(submission, "sentinel")
    expect(
        sentinel["defined"] is True,
        observed="fifo_queue.py defines no SENTINEL",
        expected="a module-level constant SENTINEL = None, the value that marks the end",
        hint="add `SENTINEL = None` at the top of fifo_queue.py and compare items with it",
    )
    expect(
        sentinel["value"] is None,
        observed=f"fifo_queue.SENTINEL is {brief(sentinel['value'], 60)}",
        expected="SENTINEL = None: items are never None, so None marks the end",
        hint="set `SENTINEL = None`; the producer puts it after the items and the consumer stops at it",
    )


def _queue_problem(call: Call, position: int, name: str) -> str | None:
    """What is wrong with the queue ``call`` received as argument ``name``, or ``None`` for a multiprocessing.Queue."""
    value = call.args[position] if len(call.args) > position else call.kwargs.get(name)
    if isinstance(value, Opaque) and (value.type_name in QUEUE_TYPES or value.type_name.startswith("fifo_queue.")):
        return None  # a multiprocessing.Queue, a JoinableQueue, or a class of the student's own
    kind = value.type_name if isinstance(value, Opaque) else type(value).__name__
    return f"{call.func}() received {kind} as `{name}`"


@pytest.mark.points(1)
def test_linked_by_multiprocessing_queues(submission: Submission) -> None:
    """run_pipeline links producer and consumer with multiprocessing.Queue objects."""
    run = _mixed_run(submission)
    problems = []
    for name, arguments in (("producer", ("queue",)), ("consumer", ("queue", "results"))):
        calls = run.calls(name)
        if not calls:
            problems.append(f"run_pipeline never called {name}()")
        for call in calls[:1]:
            problems.extend(p for i, a in enumerate(arguments) if (p := _queue_problem(call, i, a)))
    expect(
        not problems,
        observed="; ".join(problems),
        expected="producer(queue, items) and consumer(queue, results) each given multiprocessing.Queue() objects",
        hint="create both queues with multiprocessing.Queue() in run_pipeline (queue.Queue only works between "
        "threads; a SimpleQueue, a Pipe or a Manager's queue is not what the assignment asks for)",
    )


@pytest.mark.points(1)
def test_no_side_effects_at_import(submission: Submission) -> None:
    """Importing fifo_queue.py prints nothing and starts no process or thread."""
    expect_no_import_side_effects(
        submission,
        expected="importing the module only defines SENTINEL and the functions",
        hint="put any test code under `if __name__ == \"__main__\":` - under spawn every child re-imports your file",
        within=lambda: _mixed_run(submission, allow_error=True),
    )
