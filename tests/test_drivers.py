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


def _look(monkeypatch: pytest.MonkeyPatch, target: Any, unsure: float, spun: float) -> tuple[str, float, float | None]:
    """The bounded_buffer driver's look at a call of ``target``: its state, the seconds it took, the thread's CPU."""
    import time

    drivers = _drivers("bounded_buffer")
    monkeypatch.setattr(drivers, "UNSURE", unsure)
    monkeypatch.setattr(drivers, "SPUN", spun)
    call = drivers._Call(target)
    start = time.monotonic()
    state = call.settle()
    return state, time.monotonic() - start, call.cpu()


@pytest.mark.timeout(60)
def test_bounded_buffer_driver_stops_looking_at_a_call_that_spins_once_it_used_its_cpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stop: list[bool] = []

    def spin() -> None:  # a put that checks the buffer again and again, never waiting
        while not stop:
            pass

    try:
        state, took, cpu = _look(monkeypatch, spin, unsure=30.0, spun=0.3)
    finally:
        stop.append(True)
    assert state == "unsure"
    assert cpu is not None and cpu >= 0.3
    assert took < 30.0


@pytest.mark.timeout(60)
def test_bounded_buffer_driver_looks_the_whole_while_at_a_call_that_sleeps_between_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    stop: list[bool] = []

    def poll() -> None:  # a put that sleeps between two looks at the buffer: it uses almost no CPU
        while not stop:
            time.sleep(0.01)

    try:
        state, took, cpu = _look(monkeypatch, poll, unsure=1.0, spun=0.3)
    finally:
        stop.append(True)
    assert state == "unsure"
    assert took >= 1.0
    assert cpu is not None and cpu < 0.3


@pytest.mark.timeout(60)
def test_bounded_buffer_driver_sees_a_call_that_waits_or_returns(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    cond = threading.Condition()

    def wait() -> None:
        with cond:
            cond.wait(30)

    assert _look(monkeypatch, wait, unsure=30.0, spun=0.3)[0] == "waiting"
    with cond:
        cond.notify_all()
    assert _look(monkeypatch, lambda: None, unsure=30.0, spun=0.3)[0] == "done"
