"""The assignments' drivers (code that runs beside the student's module in the sandbox), called directly."""

from __future__ import annotations

import importlib.util
import os
import types
from pathlib import Path
from typing import Any

import pytest

ASSIGNMENTS = Path(__file__).resolve().parent.parent / "assignments"


def _drivers(assignment: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"drivers_of_{assignment}", ASSIGNMENTS / assignment / "drivers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _student(echo_worker: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(echo_worker=echo_worker)


def _echo(conn: Any) -> None:
    while (message := conn.recv()) is not None:
        conn.send((os.getpid(), message))
    conn.close()


MESSAGES = ["ping", 2, (3, "three")]
LIMIT = 120.0  # far past the test's own time limit: waiting it out fails the test


def test_duplex_pipe_driver_hears_each_reply_of_a_correct_worker() -> None:
    out = _drivers("duplex_pipe").worker_alone(_student(_echo), MESSAGES, LIMIT)
    assert out["replies"] == [(os.getpid(), message) for message in MESSAGES]
    assert (out["unanswered"], out["returned"], out["closed"], out["eof"], out["extra"]) == (None, True, True, True, [])


@pytest.mark.timeout(60)
def test_duplex_pipe_driver_does_not_wait_for_replies_from_a_worker_that_raised() -> None:
    def broken(conn: Any) -> None:
        inbox, outbox = conn  # one end given, two expected: TypeError before any reply

    with pytest.raises(TypeError, match="cannot unpack"):
        _drivers("duplex_pipe").worker_alone(_student(broken), MESSAGES, LIMIT)


@pytest.mark.timeout(60)
def test_duplex_pipe_driver_does_not_wait_for_replies_from_a_worker_that_returned() -> None:
    def one_reply(conn: Any) -> None:  # returns without closing its end: the driver's end sees no end of file
        conn.send((os.getpid(), conn.recv()))

    out = _drivers("duplex_pipe").worker_alone(_student(one_reply), MESSAGES, LIMIT)
    assert out["replies"] == [(os.getpid(), "ping")]
    assert (out["unanswered"], out["returned"], out["closed"]) == (1, True, False)
