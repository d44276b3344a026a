"""Queue probes: a producer that puts its items slowly, so a consumer that polls shows its bug every run.

Runs on the *untrusted* side, in every process of a sandbox (imports nothing of
the trusted ``grader`` package). Importing it registers, in ``probes.PROBES``:

- ``paced_producer``: every put on a ``multiprocessing`` queue made from the
  student's producer code waits 0.05 s first.
- ``slow_producer``: the same with 0.2 s.

"Producer code" is any frame of a function from the student's files whose name
(or, on Python 3.11+, qualified name such as ``Producer.run``) contains
``produc``: the put is slowed however the producer is started (a ``Process``
target, a ``Process`` subclass, a helper it calls). Before its first slowed put,
a producer also waits (up to 2 s) until some reader has started: a child
process, or student code named ``consum...``, called ``get``, ``empty`` or
``qsize`` on a queue. So a consumer that asks ``empty()`` before taking an item
finds the queue empty, and one that polls between items finds a gap of the whole
delay after every item: either way it stops early on every run, not only when
the machine happens to be slow. Each slowed put records a ``queue_paced`` event
(``delay``, and ``waited`` for the first one: how long it waited for a reader);
the first reader of each process records a ``queue_reader`` event.

With ``slow_producer``, a consumer that gives up when no item came for a while
(``get(timeout=...)``, stopping at ``queue.Empty``) is caught the same way,
whatever its timeout: a reader's timed ``get`` leaves a marker, and one that
ended in ``Empty`` another. Once a timed ``get`` was seen, the producer's second
slowed put waits (up to :data:`TIMED_WAIT` seconds, once) until such a ``get``
has ended empty, so the items after it, the sentinel included, come only after
the consumer gave up once. A consumer that goes on after ``Empty`` loses nothing.
That put's ``queue_paced`` event also has ``stalled`` (the seconds it waited).
"""

from __future__ import annotations

import os
import sys
import time

from . import events, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

PACED_DELAY = 0.05
SLOW_DELAY = 0.2
READER_WAIT = 2.0
READER_MARK = "queue-reader-started"
TIMED_MARK = "queue-timed-get"
"""Marker: a reader called ``get`` with a timeout."""
EMPTY_MARK = "queue-timed-get-empty"
"""Marker: a reader's timed ``get`` ended in ``queue.Empty``."""
TIMED_WAIT = 4.0
"""Seconds the producer waits at most, once, for a timed ``get`` to end empty (see the module's docstring)."""

_state: dict[str, Any] = {"delay": None, "work_dir": None, "paced": 0, "reader_marked": False, "stall": False,
                          "timed_marked": False}


def _marker(name: str = READER_MARK) -> str | None:
    out = os.environ.get("GRADER_SANDBOX_OUT")
    return os.path.join(out, name) if out else None


def _touch(name: str) -> None:
    path = _marker(name)
    if path:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            pass


def _exists(name: str) -> bool:
    path = _marker(name)
    return path is not None and os.path.exists(path)


def _in_student_code(word: str) -> bool:
    """Whether a frame of a function from the student's files named like ``word`` is on this thread's stack."""
    work_dir = _state["work_dir"]
    if not work_dir:
        return False
    frame: Any = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith(work_dir):
            name = getattr(code, "co_qualname", code.co_name)
            if word in name.lower():
                return True
        frame = frame.f_back
    return False


def _reader_started() -> None:
    if _state["reader_marked"]:
        return
    import multiprocessing

    if multiprocessing.parent_process() is None and not _in_student_code("consum"):
        return
    _state["reader_marked"] = True
    probes.record(events.QUEUE_READER)
    _touch(READER_MARK)


def _pace() -> None:
    waited = None
    extra: dict[str, Any] = {}
    if _state["paced"] == 0:
        waited = _wait_for(READER_MARK, READER_WAIT) if _marker() else 0.0
    elif _state["paced"] == 1 and _state["stall"] and _exists(TIMED_MARK):
        extra["stalled"] = _wait_for(EMPTY_MARK, TIMED_WAIT)
    _state["paced"] += 1
    probes.record(events.QUEUE_PACED, delay=_state["delay"], waited=waited, **extra)
    time.sleep(_state["delay"])


def _wait_for(name: str, cap: float) -> float:
    """Wait until the marker ``name`` exists, at most ``cap`` seconds; the seconds waited."""
    start = probes._monotonic()
    while not _exists(name) and probes._monotonic() - start < cap:
        time.sleep(0.01)
    return round(probes._monotonic() - start, 3)


def _timed(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``get(*args, **kwargs)`` blocks with a timeout: ``get(block=True, timeout=None)``'s arguments."""
    block = args[0] if args else kwargs.get("block", True)
    timeout = args[1] if len(args) > 1 else kwargs.get("timeout")
    return bool(block) and timeout is not None


def _wrap_put(cls: type) -> None:
    original = cls.__dict__.get("put")
    if original is None or getattr(original, "_grader_probe", False):
        return

    def put(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _in_student_code("produc"):
            _pace()
        return original(self, *args, **kwargs)

    put._grader_probe = True  # type: ignore[attr-defined]
    cls.put = put  # type: ignore[attr-defined]


def _wrap_reader(cls: type, name: str) -> None:
    original = cls.__dict__.get(name)
    if original is None or getattr(original, "_grader_probe", False):
        return

    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        _reader_started()
        if name != "get" or not _state["stall"] or not _timed(args, kwargs):
            return original(self, *args, **kwargs)
        from queue import Empty  # here: most sandboxes never import queue

        if not _state["timed_marked"]:
            _state["timed_marked"] = True
            _touch(TIMED_MARK)
        try:
            return original(self, *args, **kwargs)
        except Empty:
            _touch(EMPTY_MARK)
            raise

    method._grader_probe = True  # type: ignore[attr-defined]
    setattr(cls, name, method)


def _install(delay: float, scenario: dict[str, Any]) -> None:
    from multiprocessing import queues

    _state["delay"] = delay
    _state["work_dir"] = os.path.abspath(scenario["work_dir"]) + os.sep
    classes = [getattr(queues, name) for name in ("Queue", "JoinableQueue", "SimpleQueue") if hasattr(queues, name)]
    for cls in classes:
        _wrap_put(cls)
        for name in ("get", "empty", "qsize"):
            _wrap_reader(cls, name)


def install_paced_producer(scenario: dict[str, Any]) -> None:
    _install(PACED_DELAY, scenario)


def install_slow_producer(scenario: dict[str, Any]) -> None:
    _state["stall"] = True
    _install(SLOW_DELAY, scenario)


probes.PROBES[events.PROBE_PACED_PRODUCER] = install_paced_producer
probes.PROBES[events.PROBE_SLOW_PRODUCER] = install_slow_producer
