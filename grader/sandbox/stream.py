"""The evidence stream: the probes' events reach the trusted side as they are produced, each with its sender.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
Before a run, :class:`EvidenceStream` binds a listening ``AF_UNIX`` ``SOCK_SEQPACKET`` socket in
the sandbox's output folder (``evidence.sock``) with ``SO_PASSCRED`` set; every Python process of
the sandbox connects to it once (a forked child keeps its parent's connection) and sends each
event as one message (:class:`grader.inside.probes.Recorder`). A thread of this process accepts the
connections and drains them continuously while the run is in flight, and once more after the tree
is killed, so nothing a process sent can be rewritten or taken back afterwards.

Every message carries the kernel's word on who sent it (``SCM_CREDENTIALS``): the pid of the
sending process, in this process's PID namespace. A process can claim another pid there only with
``CAP_SYS_ADMIN`` over the user namespace owning its PID namespace, which the student's code never
has (as root it runs as a uid of its own; without root its uid inside the user namespace is not 0,
so ``execve`` cleared its capabilities: ``tests/test_evidence_stream.py`` checks both). The sender's
pid in the sandbox's PID namespace (the pid the evidence uses) is read from ``/proc/PID/status``
(``NSpid:``) when its first message arrives; a sender already gone by then is identified later
from the kernel witness's record of the tree (:meth:`Streamed.identify`), or stays unknown.

Bounded: at most :data:`grader.sandbox.readback.EVIDENCE_BYTES` of messages (and
:data:`~grader.sandbox.readback.EVIDENCE_EVENTS` of them) are kept; past that the thread goes on
reading and dropping (a sender never blocks for good) and the run's evidence is refused as over the
limit, the student's result; the connection that went over is closed, so its sender's next write
fails at once (``BrokenPipeError``) instead of waiting for the drain. At most :data:`MAX_CONNECTIONS`
connections are served. A socket path too long for ``AF_UNIX`` is reached through
``/proc/self/fd``. Where the platform lacks ``SOCK_SEQPACKET`` or ``SO_PASSCRED`` (macOS, Windows),
the sandbox falls back to the evidence file (:func:`usable`).
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.sandbox.readback import EVIDENCE_BYTES, EVIDENCE_EVENTS
from grader.sandbox.witness import KernelView, ns_pid

__all__ = ["MAX_CONNECTIONS", "SOCKET_NAME", "EvidenceChannel", "EvidenceStream", "Streamed", "usable"]

SOCKET_NAME = "evidence.sock"
MAX_CONNECTIONS = 512
"""Connections served at most in one run (one per process of the tree is the norm; 128 tasks at most)."""
MESSAGE_BYTES = 64 * 1024
"""Largest message read whole (an event is at most 16 KiB); a longer one is counted and dropped."""
PATH_BYTES = 107
_CRED = struct.Struct("3i")
_MSG_TRUNC = int(getattr(socket, "MSG_TRUNC", 0x20))  # a plain int: an IntFlag operation per message costs more than the rest


def usable(path: Path) -> bool:
    """Whether an evidence stream can be bound at ``path`` on this platform (a path too long for ``AF_UNIX`` is
    reached through ``/proc/self/fd``, on both sides)."""
    return (
        sys.platform.startswith("linux")
        and hasattr(socket, "SO_PASSCRED")
        and hasattr(socket, "SCM_CREDENTIALS")
        and hasattr(socket, "SOCK_SEQPACKET")
        and (len(os.fsencode(str(path))) <= PATH_BYTES or os.path.isdir("/proc/self/fd"))
    )


def _bind(sock: socket.socket, path: Path) -> None:
    if len(os.fsencode(str(path))) <= PATH_BYTES:
        sock.bind(str(path))
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sock.bind(f"/proc/self/fd/{folder}/{path.name}")
    finally:
        os.close(folder)


class EvidenceChannel:
    """One run's evidence channel in ``out``: a stream where :func:`usable` (its path goes in ``scenario``), else an
    empty evidence file ``file_name`` made here. :attr:`path` is the socket or the file (its inode is checked after)."""

    def __init__(self, out: Path, scenario: dict[str, Any], file_name: str) -> None:
        self.path = out / SOCKET_NAME
        self.stream: EvidenceStream | None = None
        if usable(self.path):
            scenario["evidence_stream"] = str(self.path)
            self.stream = EvidenceStream(self.path, limit=EVIDENCE_BYTES, max_events=EVIDENCE_EVENTS)
        else:
            self.path = out / file_name
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def start(self) -> None:
        if self.stream is not None:
            self.stream.start()

    def stop(self, kernel: KernelView | None) -> Streamed | None:
        """Once the tree is gone: what the stream received, senders identified (``None``: the evidence file is read)."""
        if self.stream is None:
            return None
        streamed = self.stream.stop()
        streamed.identify(kernel)
        return streamed

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


@dataclass
class Streamed:
    """What one run sent through its evidence stream (plain data)."""

    messages: list[tuple[int, float, bytes]] = field(default_factory=list)
    """``(sender's pid on the host, 0 if the kernel gave none; when it arrived, time.monotonic(); the message)``."""
    senders: dict[int, int | None] = field(default_factory=dict)
    """Sender's pid on the host -> its pid in the sandbox's PID namespace (``None``: not identified)."""
    size: int = 0
    """Bytes received, dropped ones included."""
    dropped: int = 0
    """Messages received past the bound and dropped."""
    connections: int = 0
    refused_connections: int = 0

    def identify(self, kernel: KernelView | None) -> None:
        """Fill in the senders the stream could not identify from the kernel witness's record of the tree."""
        if kernel is None:
            return
        known = {t.host: t.pid for t in kernel.tasks if not t.thread}
        for host, pid in self.senders.items():
            if pid is None and host in known:
                self.senders[host] = known[host]


class EvidenceStream:
    """One run's evidence channel: a listening socket and the thread that drains it."""

    def __init__(self, path: Path, *, limit: int, max_events: int) -> None:
        self.path = path
        self.limit = limit
        self.max_events = max_events
        self.streamed = Streamed()
        self._kept = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)  # accepted sockets inherit it
            _bind(self._listener, path)
            os.chmod(path, 0o600)
            self._listener.listen(128)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._wake_r, self._wake_w = os.pipe()  # stop() wakes the thread at once: no polling
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="grader-evidence-stream", daemon=True)
        self._closed = False

    def start(self) -> EvidenceStream:
        self._thread.start()
        return self

    def stop(self) -> Streamed:
        """Stop the thread, read what is still queued (the tree is gone by now), close everything."""
        if self._closed:
            return self.streamed
        self._stop.set()
        if self._thread.is_alive():
            os.write(self._wake_w, b"!")
            self._thread.join()
        try:
            self._accept_all()
            for conn in list(self._conns):
                self._drain(conn)
        finally:
            self.close()
        return self.streamed

    def close(self) -> None:
        """Close the sockets (also when the run never started)."""
        if self._closed:
            return
        self._closed = True
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        self._selector.close()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select():
                sock = key.fileobj
                if sock is self._listener:
                    self._accept_all()
                elif isinstance(sock, socket.socket):
                    self._drain(sock)

    def _accept_all(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(self._conns) >= MAX_CONNECTIONS:
                self.streamed.refused_connections += 1
                conn.close()
                continue
            self.streamed.connections += 1
            conn.setblocking(False)
            self._conns.append(conn)
            if not self._stop.is_set():
                self._selector.register(conn, selectors.EVENT_READ)

    def _drain(self, conn: socket.socket) -> None:
        """Read every message queued on ``conn``; close it at its end."""
        space = socket.CMSG_SPACE(_CRED.size)
        while True:
            try:
                data, ancdata, flags, _ = conn.recvmsg(MESSAGE_BYTES, space)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, ancdata, flags = b"", [], 0
            if not data and not ancdata:
                self._forget(conn)
                return
            if not self._keep(_sender(ancdata), data, bool(flags & _MSG_TRUNC)):
                self._forget(conn)  # over the bound: its sender's next write fails at once instead of waiting
                return

    def _forget(self, conn: socket.socket) -> None:
        try:
            self._selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        self._conns.remove(conn)
        conn.close()

    def _keep(self, host: int, data: bytes, truncated: bool) -> bool:
        """Keep one message (``False``: it was over the bound and dropped)."""
        streamed = self.streamed
        streamed.size += MESSAGE_BYTES if truncated else len(data)
        if host and host not in streamed.senders:
            streamed.senders[host] = ns_pid(host)
        if truncated or self._kept + len(data) > self.limit or len(streamed.messages) >= self.max_events:
            streamed.dropped += 1
            return False
        self._kept += len(data)
        streamed.messages.append((host, time.monotonic(), data))
        return True


def _sender(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The sending process's pid (in this process's PID namespace) from ``SCM_CREDENTIALS``, or 0."""
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= _CRED.size:
            return max(0, _CRED.unpack_from(payload)[0])
    return 0
