"""Pipe probes: record every message sent and received on a ``multiprocessing`` connection.

Runs on the *untrusted* side, in every process of a sandbox (imports nothing of
the trusted ``grader`` package). Importing it registers, in ``probes.PROBES``:

- ``pipe_ops``: ``Connection.send`` and ``Connection.recv`` (the ends of a
  ``multiprocessing.Pipe``) record a ``pipe`` event each: ``op`` is ``send``
  (recorded when the call starts), ``recv`` (when a message has arrived) or
  ``eof`` (``recv`` raised ``EOFError``: the other end was closed); ``conn``
  the connection's handle in that process; ``what`` a short description of the
  message (long strings and bytes are summarised, never copied whole);
  ``thread`` the name of the calling thread.

``multiprocessing.Queue`` and ``Pool`` use ``send_bytes``/``recv_bytes`` on
their own connections, not ``send``/``recv``, so only the student's pipe traffic
is recorded (and a ``Manager``'s, should the student use one).
"""

from __future__ import annotations

import reprlib
import threading

from . import events, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

_repr = reprlib.Repr()
_repr.maxstring = 40
_repr.maxother = 40
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 6


def brief(value: Any) -> str:
    """A short description of a message, cheap even for a message of megabytes."""
    cls = type(value)
    if cls in (str, bytes) and len(value) > 40:
        return f"{cls.__name__} of length {len(value)}: {value[:20]!r}..."
    try:
        text = _repr.repr(value)
    except Exception:
        text = f"<{cls.__name__}>"
    return text[:120] if isinstance(text, str) else f"<{cls.__name__}>"


def install_pipe_ops(scenario: dict[str, Any]) -> None:
    from multiprocessing import connection

    base = connection._ConnectionBase
    if getattr(base.send, "_grader_probe", False):
        return
    original_send = base.send
    original_recv = base.recv

    def send(self: Any, obj: Any) -> None:
        probes.record(
            events.PIPE, op="send", conn=getattr(self, "_handle", None), what=brief(obj), thread=threading.current_thread().name
        )
        original_send(self, obj)

    def recv(self: Any) -> Any:
        try:
            obj = original_recv(self)
        except EOFError:
            probes.record(events.PIPE, op="eof", conn=getattr(self, "_handle", None), thread=threading.current_thread().name)
            raise
        probes.record(
            events.PIPE, op="recv", conn=getattr(self, "_handle", None), what=brief(obj), thread=threading.current_thread().name
        )
        return obj

    send._grader_probe = True  # type: ignore[attr-defined]
    base.send = send  # type: ignore[method-assign]
    base.recv = recv  # type: ignore[method-assign]


probes.PROBES[events.PROBE_PIPE_OPS] = install_pipe_ops
