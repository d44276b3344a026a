"""Sequences of items and of operations: how what came out differs from what went in.

Check helpers for queue and pipe assignments (trusted side):

- :func:`same` compares plain values exactly, all the way down (``(1, 0)`` is not
  ``(1, False)``, ``[1]`` is not ``(1,)``);
- :func:`brief` shows a value in a message without copying a megabyte string;
- :func:`sequence_problem` says in words how a returned sequence differs from
  the expected one, recognising the classic queue bugs (reversed, sorted, first
  item lost, sentinel included, items lost or duplicated);
- :func:`unanswered_request` finds a request sent before the previous one was
  answered (a pipe used "send everything, then receive everything");
- :func:`pipe_ops` and :func:`paced_puts` read the events of the ``pipe_ops``
  and ``paced_producer``/``slow_producer`` probes from a :class:`Run`;
- :func:`student_leftovers` is ``run.leftovers`` without ``multiprocessing``'s
  own resource tracker (which a queue starts, and which may still be ending);
- :func:`expect_children_joined` is the usual "every child joined, exited 0,
  nothing left running" check, in the assignment's own words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.checks.expect import expect, fail
from grader.evidence.run import Run
from grader.inside.wire import Opaque

__all__ = [
    "PipeOp",
    "brief",
    "caller_tid",
    "expect_children_joined",
    "paced_puts",
    "pipe_ops",
    "same",
    "same_items",
    "sequence_problem",
    "student_leftovers",
    "unanswered_request",
]

_CONTAINERS = (list, tuple)


def same(a: Any, b: Any) -> bool:
    """Exact equality of plain values: same types at every level, equal values."""
    if type(a) is not type(b):
        return False
    if type(a) in _CONTAINERS:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b:
                return False
            twin = next(k for k in b if k == key)
            if not same(key, twin) or not same(value, b[twin]):
                return False
        return True
    if type(a) in (set, frozenset):
        return len(a) == len(b) and all(any(same(x, y) for y in b) for x in a)
    if type(a) is Opaque:
        return False
    return bool(a == b)


def same_items(observed: Sequence[Any], expected: Sequence[Any]) -> bool:
    """Both sequences hold exactly the same items in the same order (see :func:`same`)."""
    return len(observed) == len(expected) and all(same(o, e) for o, e in zip(observed, expected))


def brief(value: Any, limit: int = 60) -> str:
    """A short repr for a message; long strings and bytes are summarised."""
    if type(value) in (str, bytes) and len(value) > limit:
        return f"a {type(value).__name__} of length {len(value)} starting {value[:12]!r}"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(values: Sequence[Any], most: int = 3) -> str:
    shown = ", ".join(brief(v, 30) for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def _unmatched(have: Sequence[Any], want: Sequence[Any]) -> list[Any]:
    """Items of ``want`` with no exact counterpart left in ``have`` (a multiset difference)."""
    pool = list(have)
    left = []
    for item in want:
        for index, candidate in enumerate(pool):
            if same(candidate, item):
                del pool[index]
                break
        else:
            left.append(item)
    return left


def sequence_problem(observed: Any, expected: Sequence[Any], *, sentinel: Any = None) -> str | None:
    """How ``observed`` differs from the list ``expected``, as a phrase, or ``None`` if it is exactly it.

    The phrase completes "... returned ...", for example "the items in reverse
    order (last in, first out)" or "4 of the 6 items: 'b', 3.5 are missing".
    """
    if type(observed) is not list:
        kind = type(observed).__name__ if not isinstance(observed, Opaque) else observed.type_name
        return f"{brief(observed)} (a {kind}) instead of a list"
    expected = list(expected)
    if same_items(observed, expected):
        return None
    count = len(expected)
    if count > 1 and same_items(observed, expected[::-1]):
        return "the items in reverse order (last in, first out)"
    try:
        ordered = sorted(expected)
    except TypeError:
        ordered = None
    if ordered is not None and count > 1 and not same_items(ordered, expected) and same_items(observed, ordered):
        return "the items sorted, not in the order they were put on the queue"
    if same_items(observed, [*expected, sentinel]):
        if not count:
            return f"[{sentinel!r}]: the sentinel, which is not an item"
        return f"every item and then the sentinel {sentinel!r}, which is not an item"
    if count and same_items(observed, expected[1:]):
        return f"every item but the first one ({brief(expected[0], 30)})"
    if count > 1 and same_items(observed, expected[:-1]):
        return f"every item but the last one ({brief(expected[-1], 30)})"
    missing = _unmatched(observed, expected)
    extra = _unmatched(expected, observed)
    head = f"{len(observed)} item(s) where {count} were expected" if len(observed) != count else f"{count} items"
    if not missing and not extra:
        for index, (got, want) in enumerate(zip(observed, expected)):
            if not same(got, want):
                return (
                    f"the right items in the wrong order: position {index} holds {brief(got, 30)} "
                    f"where {brief(want, 30)} was put"
                )
    parts = []
    if missing:
        parts.append(f"missing {_listing(missing)}")
    if extra:
        sentinels = [e for e in extra if same(e, sentinel)]
        what = _listing(extra)
        parts.append(f"unexpected {what}" + (" (the sentinel is not an item)" if sentinels else ""))
    if len(observed) == count and not parts:  # same multiset, types differ in a way _unmatched missed
        parts.append("not the items that were put")
    return f"{head}: " + "; ".join(parts)


def unanswered_request(ops: Sequence[str], request: str = "send", reply: str = "recv") -> int | None:
    """The position (0-based count of requests) of the first request made before the previous one was answered."""
    requests = replies = 0
    for op in ops:
        if op == request:
            if requests > replies:
                return requests
            requests += 1
        elif op == reply:
            replies += 1
    return None


@dataclass(frozen=True)
class PipeOp:
    """One ``send``, ``recv`` or ``eof`` on a ``multiprocessing`` connection (the ``pipe_ops`` probe)."""

    op: str
    pid: int
    tid: int
    thread: str
    conn: Any
    what: str
    t: float


def pipe_ops(run: Run, pid: int | None = None, tid: int | None = None) -> list[PipeOp]:
    """Pipe operations recorded by the ``pipe_ops`` probe (of process ``pid`` and thread ``tid``), in time order."""
    out = []
    for event in run.of("pipe"):
        if pid is not None and event["pid"] != pid:
            continue
        if tid is not None and event.get("tid") != tid:
            continue
        out.append(
            PipeOp(
                op=str(event.get("op", "")),
                pid=event["pid"],
                tid=int(event.get("tid", 0)),
                thread=str(event.get("thread", "")),
                conn=event.get("conn"),
                what=str(event.get("what", "")),
                t=float(event["t"]),
            )
        )
    return out


def caller_tid(run: Run) -> int | None:
    """The thread of the sandbox's main process that called the student's function."""
    for event in run.of("phase"):
        if event.get("name") == "call" and event["pid"] == run.main_pid:
            tid = event.get("tid")
            return tid if type(tid) is int else None
    return None


def paced_puts(run: Run) -> list[dict[str, Any]]:
    """Puts slowed by the ``paced_producer`` or ``slow_producer`` probe (pid, delay, time)."""
    return [{"pid": e["pid"], "delay": e.get("delay"), "t": e["t"]} for e in run.of("queue_paced")]


MP_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def student_leftovers(run: Run) -> list[dict[str, Any]]:
    """Processes left running after the run, without multiprocessing's own resource tracker or forkserver.

    The resource tracker a ``multiprocessing.Queue`` starts ends by itself once
    the main process has ended, and can be caught doing so among ``run.leftovers``:
    with its command line still readable, or already empty (a process whose
    memory is gone is exiting, not left running).
    """
    out = []
    for proc in run.leftovers:
        cmdline = str(proc.get("cmdline", ""))
        if cmdline and not any(helper in cmdline for helper in MP_HELPERS):
            out.append(proc)
    return out


def expect_children_joined(
    run: Run,
    function: str,
    *,
    wanted: str,
    start_hint: str,
    join_expected: str,
    join_hint: str,
    exit_expected: str = "every child exits with code 0",
    exit_hint: str = "an exception in the child ends it with code 1; its error output shows where",
    alive_hint: str = "join every process you start",
) -> None:
    """Fail unless ``function`` started child processes, joined each, each exited 0, and left nothing running.

    ``wanted`` says what children were expected (shown when there are none);
    the ``*_expected`` and ``*_hint`` texts are the assignment's words for each
    failure. Leftovers are processes alive when ``function`` returned, or the
    student's processes the sandbox found at the end (not multiprocessing's own
    helpers).
    """
    children = run.child_processes(parent=run.main_pid)
    if not children:
        threads = run.child_threads(pid=run.main_pid)
        fail(
            f"{function} started no multiprocessing.Process"
            + (f" (it started {len(threads)} thread(s) instead)" if threads else ""),
            wanted,
            start_hint,
        )
    for child in children:
        expect(
            child.joined is not None,
            observed=f"process {child.name} (target {child.target}) was never joined",
            expected=join_expected,
            hint=join_hint,
        )
        expect(
            child.exitcode == 0,
            observed=f"process {child.name} (target {child.target}) exited with code {child.exitcode}",
            expected=exit_expected,
            hint=exit_hint,
        )
    alive = run.processes_alive_at_return() or student_leftovers(run)
    expect(
        not alive,
        observed=f"{len(alive)} process(es) still running when {function} returned",
        expected="no child process left running",
        hint=alive_hint,
    )
