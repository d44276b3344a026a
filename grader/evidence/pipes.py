"""Evidence of ``multiprocessing`` pipes: the operations on each connection, and their order.

Runs in the pytest process; the trusted half of :mod:`grader.inside.probe_pipes`.
Ask for the probe in a run (``probes=["pipe_ops"]``) and read it with
:func:`pipe_ops`; :func:`unanswered_request` finds a request sent before the
previous one was answered (a pipe used "send everything, then receive
everything", which deadlocks once the messages fill the pipe).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grader.evidence.run import Run
from grader.inside import events

__all__ = ["PipeOp", "pipe_ops", "unanswered_request"]


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
    for event in run.of(events.PIPE):
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
