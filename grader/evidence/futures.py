"""``concurrent.futures`` evidence: executors, and which worker ran each task. Runs in the pytest process.

The trusted half of :mod:`grader.inside.probe_futures`; ask for the probe in a
run (``probes=["futures"]``), then:

- :func:`executors` lists every ``ThreadPoolExecutor`` / ``ProcessPoolExecutor``
  made in any process: kind, ``max_workers``, the line that made it, and when
  ``shutdown()`` returned (``with executor:`` calls it) with its ``wait``;
- :func:`tasks` lists every task submitted (``submit``, or ``map``, which
  submits one task per item, or per chunk of a process pool's ``chunksize``):
  who submitted it, the worker process and thread that ran it, its start and
  end, and the exception's type name if it raised.

Overlap of tasks is :func:`grader.evidence.max_overlap` over ``(start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.evidence.run import Run
from grader.inside import events

__all__ = ["ExecutorLife", "FutureTask", "executors", "tasks"]


@dataclass(frozen=True)
class ExecutorLife:
    """One executor: made at ``file`` line ``line`` by process ``pid``; ``shut_down`` when ``shutdown()`` returned."""

    executor: str
    kind: str
    """``threads`` or ``processes``."""
    max_workers: int | None
    pid: int
    created: float
    file: str
    line: int
    shut_down: float | None
    wait: bool | None
    """The ``wait`` argument of the first ``shutdown()`` (``None``: never shut down)."""


@dataclass(frozen=True)
class FutureTask:
    """One submitted task: submitted by ``(submit_pid, submit_tid)``, run by worker ``(pid, tid)``."""

    executor: str
    task: str
    fn: str
    submit_pid: int
    submit_tid: int
    submitted: float
    pid: int | None
    tid: int | None
    thread: str | None
    start: float | None
    end: float | None
    error: str | None

    @property
    def worker(self) -> tuple[int, int] | None:
        """``(pid, thread ident)`` of the worker that ran it, ``None`` if it never started."""
        return (self.pid, self.tid) if self.pid is not None and self.tid is not None else None


def _str(value: Any, default: str = "?") -> str:
    return value if isinstance(value, str) else default


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def executors(run: Run) -> list[ExecutorLife]:
    """Every executor of the run, in order of creation."""
    shutdowns: dict[str, dict[str, Any]] = {}
    for event in run.of(events.FUT_SHUTDOWN):
        if isinstance(event.get("executor"), str):
            shutdowns.setdefault(event["executor"], event)
    out = []
    for event in run.of(events.FUT_NEW):
        key = event.get("executor")
        if not isinstance(key, str):
            continue
        down = shutdowns.get(key)
        workers = event.get("max_workers")
        out.append(ExecutorLife(
            executor=key, kind=_str(event.get("worker_kind")), max_workers=workers if type(workers) is int else None,
            pid=event["pid"], created=float(event["t"]), file=_str(event.get("file")),
            line=event["line"] if type(event.get("line")) is int else 0,
            shut_down=float(down["t"]) if down else None, wait=bool(down.get("wait")) if down else None,
        ))
    return out


def tasks(run: Run, executor: str | None = None) -> list[FutureTask]:
    """Every submitted task (of one executor if given), in order of submission."""
    starts: dict[str, dict[str, Any]] = {}
    ends: dict[str, dict[str, Any]] = {}
    for event in run.of(events.FUT_TASK):
        task = event.get("task")
        if isinstance(task, str):
            (starts if event.get("phase") == "start" else ends).setdefault(task, event)
    out = []
    for event in run.of(events.FUT_SUBMIT):
        task = event.get("task")
        if not isinstance(task, str) or (executor is not None and event.get("executor") != executor):
            continue
        start, end = starts.get(task), ends.get(task)
        error = end.get("error") if end else None
        out.append(FutureTask(
            executor=_str(event.get("executor")), task=task, fn=_str(event.get("fn")), submit_pid=event["pid"],
            submit_tid=_int(event.get("tid")), submitted=float(event["t"]),
            pid=start["pid"] if start else None, tid=_int(start.get("tid")) if start else None,
            thread=_str(start.get("thread")) if start else None, start=float(start["t"]) if start else None,
            end=float(end["t"]) if end else None, error=error if isinstance(error, str) else None,
        ))
    return out
