"""wait_process and wait_any: woken by a process's end, with Popen.wait's contract."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from grader.processes import wait_any, wait_process


def start(seconds: float, code: int = 0) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"import time, sys; time.sleep({seconds}); sys.exit({code})"])


def test_wait_process_returns_the_exit_status_and_reaps() -> None:
    proc = start(0.2, 3)
    assert wait_process(proc, 30) == 3
    assert proc.returncode == 3
    assert wait_process(proc, 1) == 3  # a second wait answers at once, like Popen.wait


def test_wait_process_times_out_like_popen_wait() -> None:
    proc = start(30)
    started = time.monotonic()
    try:
        with pytest.raises(subprocess.TimeoutExpired) as info:
            wait_process(proc, 0.3)
        assert time.monotonic() - started >= 0.3
        assert info.value.timeout == 0.3
        assert proc.returncode is None
    finally:
        proc.kill()
        assert wait_process(proc, 30) == -9


def test_wait_any_returns_when_one_process_ends() -> None:
    quick, slow = start(0.2), start(30)
    try:
        started = time.monotonic()
        wait_any([quick.pid, slow.pid], 20)
        assert time.monotonic() - started < 15  # woken by the quick one, not the 20 s timeout
        assert quick.wait(timeout=5) == 0
    finally:
        slow.kill()
        slow.wait()


def test_wait_any_with_nothing_to_wait_for_returns() -> None:
    started = time.monotonic()
    wait_any([], 5)
    assert time.monotonic() - started < 1
