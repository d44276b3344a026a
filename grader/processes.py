"""Wait for processes to end without polling, where the platform allows it.

``subprocess.Popen.wait(timeout=...)`` sleeps in a loop (up to 50 ms between
looks on Python 3.10 to 3.13), so a child that ends is noticed up to 50 ms late.
On Linux 5.3 and later a *pidfd* becomes readable the moment its process ends:
:func:`wait_process` and :func:`wait_any` block on it with ``select.poll`` and
wake exactly then. Elsewhere they fall back to ``Popen.wait`` and short sleeps.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import time
from collections.abc import Iterable

__all__ = ["wait_any", "wait_process"]


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
