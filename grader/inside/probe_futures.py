"""``concurrent.futures`` probe: which worker ran each task of an executor, when, how it ended, and the shutdown.

Runs on the untrusted side, in every process of the sandbox (spawn workers of a
``ProcessPoolExecutor`` included: they start through the sandbox's boot script).
Requested with ``probes=["futures"]``, it records for every
``ThreadPoolExecutor`` and ``ProcessPoolExecutor``:

- ``fut_new``: the executor's number (``PID:N``), its ``worker_kind`` (``threads`` or
  ``processes``), ``max_workers`` and the line of the student's code that made it;
- ``fut_submit``: each task submitted (``submit`` and ``map``, which submits):
  the task's identity and the function's name, in the submitting thread;
- ``fut_task``: the task starting and ending in the worker that ran it (its pid
  and thread), with the exception's type name if it raised;
- ``fut_shutdown``: ``shutdown()`` returned (``with executor:`` calls it), with
  its ``wait`` and ``cancel_futures`` arguments.

The submitted function is wrapped in :class:`Task`, a module-level class, so a
task for a process pool pickles as long as the function itself does.
"""

from __future__ import annotations

import itertools
import os
import threading

from . import events, probe_locks, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

_executors = itertools.count(1)
_tasks = itertools.count(1)


class Task:
    """A submitted function that records where and when it ran (picklable when the function is)."""

    def __init__(self, fn: Any, executor: str, task: str, name: str) -> None:
        self.fn = fn
        self.executor = executor
        self.task = task
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        fields = {"executor": self.executor, "task": self.task, "fn": self.name}
        probes.record(events.FUT_TASK, phase="start", thread=threading.current_thread().name, **fields)
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as exc:
            probes.record(events.FUT_TASK, phase="end", error=type(exc).__name__, **fields)
            raise
        probes.record(events.FUT_TASK, phase="end", error=None, **fields)
        return result


def _patch(cls: Any, kind: str) -> None:
    if getattr(cls.submit, "_grader_probe", False):
        return
    init, submit, shutdown = cls.__init__, cls.submit, cls.shutdown

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self._grader_executor = f"{probes._getpid()}:{next(_executors)}"
        file, line, func, student = probe_locks._site(1)
        probes.record(events.FUT_NEW, executor=self._grader_executor, worker_kind=kind,
                      max_workers=getattr(self, "_max_workers", None), file=file, line=line, func=func,
                      student=student)

    def submit_(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        executor = getattr(self, "_grader_executor", None)
        if executor is None or isinstance(fn, Task):
            return submit(self, fn, *args, **kwargs)
        task = f"{probes._getpid()}-{next(_tasks)}"
        name = probes._target_name(fn) or "?"
        probes.record(events.FUT_SUBMIT, executor=executor, task=task, fn=name)
        return submit(self, Task(fn, executor, task, name), *args, **kwargs)

    def shutdown_(self: Any, wait: bool = True, *, cancel_futures: bool = False) -> None:
        shutdown(self, wait=wait, cancel_futures=cancel_futures)
        executor = getattr(self, "_grader_executor", None)
        if executor is not None:
            probes.record(events.FUT_SHUTDOWN, executor=executor, wait=bool(wait), cancel=bool(cancel_futures))

    submit_._grader_probe = True  # type: ignore[attr-defined]
    cls.__init__, cls.submit, cls.shutdown = __init__, submit_, shutdown_


def install(scenario: dict[str, Any]) -> None:
    """Record the executors of ``concurrent.futures`` in this process."""
    from concurrent.futures import process, thread

    if not probe_locks._work_dir:  # where the student's code is, for the line that made an executor
        probe_locks._work_dir = os.path.abspath(scenario.get("work_dir", ""))
    _patch(thread.ThreadPoolExecutor, "threads")
    _patch(process.ProcessPoolExecutor, "processes")


probes.PROBES[events.PROBE_FUTURES] = install
