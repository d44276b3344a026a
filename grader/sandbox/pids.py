"""Pids as the student's code sees them: the sandbox's PID namespace seen from the host.

Runs in the pytest process (the trusted checking side, the sandbox host). With a PID
namespace (:mod:`grader.sandbox.launch`), the student's processes know themselves by
other pids than the host's: ``os.getpid()`` of the first one is 2 (init, the namespace's
pid 1, is its parent). Evidence events carry the student's pids; psutil, py-spy and the
kernel's ``/proc`` of the host speak host pids. The host's
``/proc/<pid>/status`` has an ``NSpid:`` line with the pid in each nested namespace,
outermost first; the second is the sandbox's (a namespace the student's code made itself
adds a third).

:class:`PidMap` records that pid for every process of a sandbox while they still run
(before the tree is killed), and turns what the sandbox reports (the leftovers, the typed
stacks with their thread ids) into the student's pids, so evidence, stacks and leftovers all speak
the same pids. Without a PID namespace (or without ``/proc``), every pid maps to itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, NamedTuple

from grader.sandbox.stacks import ProcessStack

__all__ = ["PidMap", "Roles", "namespace_pid"]

INIT = 1


def namespace_pid(pid: int, tid: int | None = None) -> int | None:
    """The pid (or, with ``tid``, the thread id) of a host process in the sandbox's namespace; ``None`` if not nested."""
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    parts = line.split()[1:]
                    return int(parts[1]) if len(parts) >= 2 else None
    except (OSError, ValueError):
        return None
    return None


class PidMap:
    """Host pid -> pid in the sandbox's PID namespace, for the processes it has seen."""

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self.inner: dict[int, int] = {}
        self.learn(pids)

    def learn(self, pids: Iterable[int]) -> None:
        """Record the namespace pid of each host pid (those that are still running and nested)."""
        for pid in pids:
            if pid not in self.inner:
                inner = namespace_pid(pid)
                if inner is not None:
                    self.inner[pid] = inner

    def of(self, pid: int) -> int:
        """The student's pid for host pid ``pid`` (``pid`` itself where it is not in a namespace)."""
        if pid not in self.inner:
            self.learn([pid])
        return self.inner.get(pid, pid)

    def inits(self) -> set[int]:
        """The host pids of the namespace's init (pid 1): the grader's own helper, never the student's."""
        return {host for host, inner in self.inner.items() if inner == INIT}

    def host(self, inner: int) -> int | None:
        """The host pid of the process the student knows as ``inner``, if seen."""
        return next((host for host, mine in self.inner.items() if mine == inner), None)

    def process(self, info: dict[str, Any]) -> dict[str, Any]:
        """A description of :func:`grader.processes.describe_process` with the student's ``pid`` and ``ppid``."""
        out = dict(info)
        for key in ("pid", "ppid"):
            if type(out.get(key)) is int:
                out[key] = self.of(out[key])
        return out

    def stacks(self, stacks: dict[int, ProcessStack]) -> dict[int, ProcessStack]:
        """Stacks of :func:`grader.sandbox.stacks.collect` with the student's pids: keys, ``pid``, ``ppid``, thread ids."""
        out: dict[int, ProcessStack] = {}
        for pid, stack in stacks.items():
            inner = self.of(pid)
            if inner == pid:
                out[pid] = stack
                continue
            threads = tuple(replace(t, thread=self._thread(pid, t.thread)) for t in stack.threads)
            ppid = self.of(stack.ppid) if stack.ppid is not None else None
            out[inner] = replace(stack, pid=inner, ppid=ppid, threads=threads)
        return out

    @staticmethod
    def _thread(pid: int, thread: str) -> str:
        """A py-spy thread id (the host's, decimal) as the namespace's; a faulthandler id (hex) as it is."""
        if not thread.isdigit():
            return thread
        inner = namespace_pid(pid, int(thread))
        return str(inner) if inner is not None else thread


class Roles(NamedTuple):
    """Host pids of a run's tree: the first process, the student's first (``-1``: not found), the grader's helpers."""

    root: int
    main: int
    helpers: frozenset[int]
    pids: PidMap
