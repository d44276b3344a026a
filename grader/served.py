"""Sandboxes started by the warm fork server (``grader/sandbox/fork_server.py``), and the environment they start with.

Runs in the processes that start the server (the warm process of ``grader grade``, the ``grader check``
command) and in the pytest processes that ask it for sandboxes (the sandbox host,
:mod:`grader.sandbox`). It imports nothing of the grader but :mod:`grader.processes`, so the controller
starts the server without loading the sandbox host. :func:`start_server` starts the server and puts the channel to it
in this process's environment (:data:`CHANNEL_ENV`), where the forks of this process find it.
:func:`launch` asks the server for a sandbox's first process and returns a :class:`ServedProcess`, which
the sandbox waits for, kills and reads the exit status of as it would a ``subprocess.Popen``; ``None``
when there is no server (a cold pytest process, a program that imports the grader, a platform without
``fork``) or it
does not answer, and the sandbox starts its launcher as before.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from grader.processes import pid_namespaces_available, stop_tree

FORK_SERVER = Path(__file__).resolve().parent / "sandbox" / "fork_server.py"
CHANNEL_ENV = "GRADER_SANDBOX_SERVER_FD"
ANSWER_WITHIN = 5.0
"""Seconds the server has to say it forked; longer, and the sandbox starts its launcher instead."""

BASE_ENVIRONMENT = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "PYTHONIOENCODING": "utf-8",
    # `-P` (3.11+): no folder first on sys.path, above all not a `spawn` child's working folder (the
    # student's, whose `multiprocessing.py` would run before the guard). 3.10: grader/inside/boot.py.
    "PYTHONSAFEPATH": "1",
}
"""The environment of every interpreter of a sandbox but the variables of the run (``HOME``, ``TMPDIR``, its folder).

The fork server starts with exactly this, so that what an interpreter reads from its environment only
when it starts (the hash seed, ``-B``, ``-P``, the encoding of its standard streams) is the same."""


def base_interpreter() -> str:
    """The Python the student's code runs with: the installation's own, not a virtual environment's.

    Student code gets the standard library only, and a virtual environment may
    live inside the grader's checkout, which the sandbox hides.
    """
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for candidate in (os.path.join(sys.base_prefix, "bin", version), getattr(sys, "_base_executable", None)):
        if candidate and os.path.isfile(candidate):
            return os.path.realpath(candidate)
    return os.path.realpath(sys.executable)


def supported() -> bool:
    """Linux with ``fork``, descriptor passing and pidfds: the platforms the fork server runs on."""
    return sys.platform.startswith("linux") and hasattr(socket, "send_fds") and hasattr(os, "pidfd_open")


class Server(NamedTuple):
    """A running fork server and this process's end of its channel."""

    proc: subprocess.Popen[bytes]
    channel: int


def start_server() -> Server | None:
    """Start the fork server and name its channel in ``os.environ`` (for this process's forks); ``None`` if unsupported.

    The channel is a socket pair: only this process and its forks hold the other end, and it is
    closed on ``exec``, so no program this process or its forks start (a sandbox above all) holds it.
    Started only where this process can give a sandbox a PID namespace (found once, here, before the
    forks: a pytest process asks for no fork of its own to know).
    The server ends once they have all closed it and its sandboxes have ended.
    """
    if not supported() or os.environ.get("GRADER_SANDBOX_SERVER") == "off":
        return None
    if not pid_namespaces_available():  # only runs into a PID namespace of their own are served
        return None
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        proc = subprocess.Popen(
            [base_interpreter(), "-S", str(FORK_SERVER), str(theirs.fileno())],
            env=dict(BASE_ENVIRONMENT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,  # Ctrl-C reaches the grader, which ends the sandboxes it asked for
        )
    except OSError:
        mine.close()
        return None
    finally:
        theirs.close()
    inode = os.fstat(mine.fileno()).st_ino
    fd = mine.detach()
    os.environ[CHANNEL_ENV] = f"{fd}:{inode}"
    return Server(proc, fd)


def stop_server(server: Server, timeout: float = 5.0) -> None:
    """Close this process's channel and wait for the server to end (it ends once its sandboxes have).

    Every pytest process that asked it for sandboxes has ended by now, and each ends its sandboxes
    itself; whatever of a sandbox is still running after ``timeout`` seconds (its pytest process was
    killed before it could end it) is killed, with the server.
    """
    if channel() == server.channel:
        os.environ.pop(CHANNEL_ENV, None)
    try:
        os.close(server.channel)
    except OSError:
        pass
    try:
        server.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_tree(server.proc.pid, 0.5)
        server.proc.wait()


def channel() -> int | None:
    """The fork server's channel this process inherited (:func:`start_server`), if it holds one.

    :data:`CHANNEL_ENV` names the descriptor and its socket's inode: a program started by this
    process inherits the variable but not the descriptor (closed on ``exec``), and whatever it has
    open under that number is not taken for the channel.
    """
    try:
        fd_text, inode_text = os.environ.get(CHANNEL_ENV, "").split(":")
        fd = int(fd_text)
        found = os.fstat(fd)
    except (ValueError, OSError):
        return None
    return fd if stat.S_ISSOCK(found.st_mode) and str(found.st_ino) == inode_text else None


class ServedProcess:
    """A sandbox's first process, a fork of the server: waited for and killed like a ``subprocess.Popen``.

    Its end comes as the server's ``exit`` message on the sandbox's own socket; a server that
    died without one leaves the status unknown, and the run is reported as killed.
    """

    def __init__(self, conn: socket.socket, pid: int, args: list[str], request: tuple[bytes, list[int]]) -> None:
        self.pid = pid
        self.args = args
        self.returncode: int | None = None
        self._conn = conn
        self._request: tuple[bytes, list[int]] | None = request

    def go(self) -> None:
        """Hand the fork its request: until now it waits, so whatever watches the run can start first."""
        if self._request is None:
            return
        message, fds = self._request
        self._request = None
        try:
            socket.send_fds(self._conn, [message], fds)
        except OSError:
            pass  # the fork finds no request and ends (status 70): a run that never started
        finally:
            for fd in fds:
                os.close(fd)

    def _read(self) -> None:
        for fd in self._request[1] if self._request is not None else []:
            os.close(fd)  # ended before it was handed its request
        self._request = None
        try:
            message = self._conn.recv(64)
        except OSError:
            message = b""
        self._conn.close()
        try:
            self.returncode = int(message.split(b" ", 1)[1]) if message.startswith(b"exit ") else -signal.SIGKILL
        except ValueError:
            self.returncode = -signal.SIGKILL

    def poll(self) -> int | None:
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self._read()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            if not select.select([self._conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            self._read()
        return int(self.returncode if self.returncode is not None else -signal.SIGKILL)


def ignored_signals() -> bytes:
    """The signals this process ignores, as ``b"1,13"``.

    A launched sandbox inherits them through ``execve``, so the fork takes them too.
    """
    found = []
    for sig in signal.valid_signals():
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                found.append(str(int(sig)))
        except (OSError, ValueError):
            continue
    return ",".join(found).encode("ascii")


def launch(config: Path, out_fd: int, err_fd: int, status_fd: int) -> ServedProcess | None:
    """Ask the server for a sandbox's first process running the launcher's steps of ``config``; ``None``: no server.

    The fork waits for :meth:`ServedProcess.go`; the descriptors are the fork's standard output,
    error and status pipe (duplicated: the caller closes its own).
    """
    server = channel()
    if server is None:
        return None
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        with socket.socket(fileno=os.dup(server)) as requests:
            socket.send_fds(requests, [b"R"], [theirs.fileno()])
        theirs.close()
        # The fork reads the request only once the server said it forked: a server too slow to answer
        # in time leaves a fork that finds no request and ends, never a second run of the same sandbox.
        if not select.select([mine], [], [], ANSWER_WITHIN)[0]:
            raise OSError("the fork server did not answer")
        message = mine.recv(64)
        if not message.startswith(b"pid "):
            raise OSError("the fork server did not fork")
        pid = int(message.split(b" ", 1)[1])
    except (OSError, ValueError):
        mine.close()
        theirs.close()
        return None
    request = (os.fsencode(config) + b"\0" + ignored_signals(), [os.dup(out_fd), os.dup(err_fd), os.dup(status_fd)])
    return ServedProcess(mine, pid, [str(FORK_SERVER), str(config)], request)
