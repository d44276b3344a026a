"""Processes of the trusted side: wait for them without polling, become their subreaper, end a whole tree.

``subprocess.Popen.wait(timeout=...)`` sleeps in a loop (up to 50 ms between
looks on Python 3.10 to 3.13), so a child that ends is noticed up to 50 ms late.
On Linux 5.3 and later a *pidfd* becomes readable the moment its process ends:
:func:`wait_process` and :func:`wait_any` block on it with ``select.poll`` and
wake exactly then. Elsewhere they fall back to ``Popen.wait`` and short sleeps.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterable

import psutil

__all__ = ["become_subreaper", "end_descendants", "wait_any", "wait_process"]


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:  # no such process (already reaped), or a kernel without pidfd
        return None


def wait_process(proc: subprocess.Popen[bytes], timeout: float | None) -> int:
    """``proc.wait(timeout)``, woken by the process's end instead of polling for it.

    Raises :class:`subprocess.TimeoutExpired` like ``Popen.wait``.
    """
    if timeout is None or proc.returncode is not None:
        return proc.wait(timeout)
    fd = _pidfd(proc.pid)
    if fd is None:
        return proc.wait(timeout)
    ended = False
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while not ended:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                ended = bool(poller.poll(max(1, int(remaining * 1000) + 1)))
            except InterruptedError:  # pragma: no cover - PEP 475 retries, kept for old kernels
                continue
    finally:
        os.close(fd)
    if not ended and proc.poll() is None:
        raise subprocess.TimeoutExpired(proc.args, timeout)
    return proc.wait()  # it has ended: reap it


def wait_any(pids: Iterable[int], timeout: float) -> None:
    """Return once any of ``pids`` has ended (or none is left to wait for), or after ``timeout`` seconds."""
    fds = [fd for fd in (_pidfd(pid) for pid in pids) if fd is not None]
    if not fds:
        time.sleep(min(timeout, 0.02))
        return
    try:
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)
        with contextlib.suppress(InterruptedError):
            poller.poll(max(1, int(timeout * 1000)))
    finally:
        for fd in fds:
            os.close(fd)

_SUBREAPER: bool | None = None


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux), so orphaned sandbox processes come back to it."""
    global _SUBREAPER
    if _SUBREAPER is None:
        _SUBREAPER = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                _SUBREAPER = False
    return _SUBREAPER


def end_descendants(timeout: float = 10.0) -> int:
    """Kill every process still running below this one and reap it; returns how many were found.

    With this process a child subreaper, that includes processes that escaped
    their parents with ``setsid`` and a double fork.
    """
    me = psutil.Process()
    found: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            children = me.children(recursive=True)
        except psutil.Error:
            children = []
        live = []
        for child in children:
            try:
                if child.status() != psutil.STATUS_ZOMBIE:
                    live.append(child)
            except psutil.Error:
                continue
        for child in live:
            found.add(child.pid)
            with contextlib.suppress(psutil.Error):
                child.suspend()
        for child in live:
            with contextlib.suppress(psutil.Error):
                child.kill()
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                break
        if not children:
            break
        wait_any([c.pid for c in live], min(0.5, max(0.0, deadline - time.monotonic())))
    return len(found)

