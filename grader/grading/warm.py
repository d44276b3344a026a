"""Warm pytest processes for batch grading: a fork server on the trusted side.

Every submission is graded by a pytest process of its own (:mod:`grader.grading.grade`).
Started cold, about half a second of CPU of that process goes to the interpreter
importing pytest, its plugins and the grader before the first check runs.
``grader grade`` pays it once per batch: :class:`WarmPytest` starts one *warm*
process (``python -m grader.grading.warm``) that imports all of that and then only forks.
Each fork runs ``pytest.main`` with the arguments of the cold command line
(:func:`grader.grading.grade.pytest_command`), in its own folder, with its output in
its own log, and exits.

What this keeps:

- one pytest process per submission, used for that submission only and gone
  afterwards: nothing of one submission's grading (modules, fixtures, state of
  the checks) is seen by the next, which starts from a fork of the pristine warm
  process;
- the warm process is trusted code only: it never runs a check and never loads
  student code (student code only ever runs in the sandboxes each pytest process
  starts, exactly as before);
- the same exit status, output, time limit and result file as a cold process.

Protocol (JSON lines; requests on the warm process's stdin, replies on its
stdout)::

    -> {"id": 1, "args": [...], "cwd": "/tmp/x", "log": "/tmp/x/pytest.log"}
    <- {"id": 1, "pid": 4242}          the fork runs
    <- {"id": 1, "exit": 0}            it ended (negative: killed by that signal)
    -> {"kill": 1}                     SIGKILL it (through its pidfd: no pid reuse race)
    (stdin closed)                     exit once every fork has ended

The forks are in the grader's process group, as cold pytest processes are: Ctrl-C
reaches them (the warm process itself ignores it) and each pytest stops and
cleans up its sandboxes as it would cold.

Linux only (it needs ``os.fork`` and ``os.pidfd_open``); elsewhere, or should the
warm process fail, grading falls back to cold processes.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grader import served
from grader.processes import stop_tree

__all__ = ["WarmPytest", "WarmUnavailable", "fork_pytest", "warm_supported"]

GRADER_MODULES = (
    "grader.model.assignment",
    "grader.checks.expect",
    "grader.diagnosis.waits",
    "grader.diagnosis.patterns",
    "grader.diagnosis.report",
    "grader.evidence.run",
    "grader.checks.common",
    "grader.evidence.locks",
    "grader.plugin",
    "grader.evidence.pools",
    "grader.model.results",
    "grader.sandbox.sandbox",
    "grader.evidence.pipes",
    "grader.checks.compare",
    "grader.checks",
    "grader.evidence",
    "grader.sandbox.stacks",
    "grader.checks.submission",
    "grader.processes",
    "grader.sandbox.launch",
)
"""Imported by the warm process: the plugin and the toolkit the checks use (never ``grader.inside``)."""


class WarmUnavailable(RuntimeError):
    """The warm process could not run a grading (it is not supported here, or it ended)."""


def warm_supported() -> bool:
    """Whether this platform has what a fork server needs (``fork`` and ``pidfd_open``)."""
    if not (hasattr(os, "fork") and hasattr(os, "pidfd_open") and sys.platform.startswith("linux")):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The grader's side


@dataclass
class _Job:
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    pid: int | None = None
    exit: int | None = None
    error: str | None = None


class WarmPytest:
    """One warm process; :meth:`run` grades with a fork of it. Safe to use from several threads."""

    def __init__(self, env: Mapping[str, str], cwd: str, extra_modules: tuple[str, ...] = ()) -> None:
        if not warm_supported():
            raise WarmUnavailable("a warm process needs Linux (fork and pidfd_open)")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "grader.grading.warm", *extra_modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
        )
        self._write_lock = threading.Lock()
        self._jobs: dict[int, _Job] = {}
        self._next = 0
        self._alive = True
        self._reader = threading.Thread(target=self._read, name="grader-warm-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            job = self._jobs.get(message.get("id", -1))
            if job is None:
                continue
            if "pid" in message:
                job.pid = int(message["pid"])
                job.started.set()
            elif "error" in message:
                job.error = str(message["error"])
                job.started.set()
                job.done.set()
            elif "exit" in message:
                job.exit = int(message["exit"])
                job.done.set()
        self._alive = False
        for job in list(self._jobs.values()):
            if not job.done.is_set():
                job.error = job.error or "the warm grading process ended"
                job.started.set()
                job.done.set()

    def _send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message) + "\n").encode("utf-8")
        with self._write_lock:
            if self._proc.stdin is None or not self._alive:
                raise WarmUnavailable("the warm grading process ended")
            try:
                self._proc.stdin.write(data)
                self._proc.stdin.flush()
            except (BrokenPipeError, ValueError, OSError) as exc:
                raise WarmUnavailable(f"the warm grading process ended ({exc})") from None

    def run(
        self,
        args: list[str],
        cwd: str,
        log: str,
        timeout: float | Callable[[], float],
        on_start: Callable[[int], None] | None = None,
        grace: float = 0.0,
    ) -> int | None:
        """Run ``pytest.main(args)`` in a fork; its exit status, or ``None`` if stopped at ``timeout``.

        ``timeout`` is seconds, or a function giving the seconds left (a budget that may grow).
        Past it, with ``grace``, the fork and its helpers get SIGTERM and up to ``grace`` seconds
        to end (:func:`grader.processes.stop_tree`); then the fork is killed. Raises
        :class:`WarmUnavailable` when the fork could not be made (the caller grades cold
        instead); nothing has run then.
        """
        if callable(timeout):
            remaining = timeout
        else:
            deadline = time.monotonic() + timeout

            def remaining() -> float:
                return deadline - time.monotonic()

        with self._write_lock:
            self._next += 1
            ident = self._next
        job = _Job()
        self._jobs[ident] = job
        try:
            self._send({"id": ident, "args": list(args), "cwd": cwd, "log": log})
            job.started.wait()
            if job.pid is None:
                raise WarmUnavailable(job.error or "the warm grading process did not start the grading")
            if on_start is not None:
                on_start(job.pid)
            while (left := remaining()) > 0:
                if job.done.wait(min(left, 1.0)):
                    if job.exit is None:
                        self._kill_orphan(job.pid)
                        raise WarmUnavailable(job.error or "the warm grading process ended")
                    return job.exit
            if grace > 0 and not job.done.is_set():
                stop_tree(job.pid, grace)
            try:
                self._send({"kill": ident})
            except WarmUnavailable:
                self._kill_orphan(job.pid)
                return None
            job.done.wait(30)
            return None
        finally:
            self._jobs.pop(ident, None)

    @staticmethod
    def _kill_orphan(pid: int) -> None:
        """A fork whose warm process died first: the pid is not reaped by anyone of ours, kill it."""
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def close(self) -> None:
        """End the warm process: it exits once no fork of it runs (after 10 s it is killed; forks go on)."""
        with self._write_lock:
            if self._proc.stdin is not None:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        if self._proc.stdout is not None and not self._reader.is_alive():
            self._proc.stdout.close()

    def __enter__(self) -> WarmPytest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def fork_pytest(args: list[str], cwd: str, log: str, env: Mapping[str, str], keep: int | None = None) -> int | None:
    """Run ``pytest.main(args)`` in a fork of this process, as a fork of a warm process would; its pid.

    For a single grading (``grader check``), this process is its own warm process: the modules
    it has imported are not imported again, and no new interpreter starts. The fork gets
    ``env`` as its environment (with its bytecode settings, which a new interpreter would
    read at its start), no file descriptor of this process but its log and ``/dev/null``,
    and none of this process's exit handlers. The caller waits for it and reaps it. ``keep``: one
    descriptor more the fork keeps (the sandboxes' fork server's channel, which ``env`` names).

    ``None`` when it cannot be done safely, and nothing has run: where :func:`warm_supported`
    says no, while this process runs other threads (a fork copies no thread but the caller's,
    and a lock another thread held would stay held in the fork), or while its ``sys.stdout`` or
    ``sys.stderr`` is not the interpreter's own (something captures this process's output).
    """
    if not warm_supported() or threading.active_count() != 1:
        return None
    if sys.stdout is not sys.__stdout__ or sys.stderr is not sys.__stderr__:
        return None
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            with contextlib.suppress(OSError, ValueError):
                stream.flush()  # written once, here, not again by the fork at its end
    pid = os.fork()
    if pid == 0:
        _become_fresh(env, keep)
        _child({"args": list(args), "cwd": cwd, "log": log}, set())
    return pid


def _become_fresh(env: Mapping[str, str], keep: int | None = None) -> None:
    """In a fork of the grader: leave behind what a new interpreter would not have (see :func:`fork_pytest`)."""
    import weakref

    atexit._clear()  # the grader's own exit handlers (its temporary folders among them) are not the fork's
    for info in list(getattr(weakref.finalize, "_registry", {}).values()):
        info.atexit = False  # the grader's pending finalizers, which run at exit, stay the grader's
    weakref.finalize._registered_with_atexit = False  # type: ignore[attr-defined]  # the fork's own run at its exit
    if keep is not None and keep > 2:  # a lock file or pipe of the grader held by the fork would outlive the grader's use
        os.closerange(3, keep)
        os.closerange(keep + 1, _fd_limit())
    else:
        os.closerange(3, _fd_limit())
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    sys.pycache_prefix = env.get("PYTHONPYCACHEPREFIX") or None


def _fd_limit() -> int:
    try:
        return max(3, os.sysconf("SC_OPEN_MAX"))
    except (OSError, ValueError):
        return 65536


# ---------------------------------------------------------------------------------------------
# The warm process


def _preload(extra: list[str]) -> None:
    import pytest  # noqa: F401
    from _pytest.config import default_plugins

    for name in default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            continue
    for name in (*GRADER_MODULES, "pytest_timeout", "pdb", "grp", *extra):
        importlib.import_module(name)
    importlib.import_module("grader.sandbox.folder").inside_bytecode()  # compiled here once, not in every fork


def _child(request: dict[str, Any], inherited: set[int]) -> None:
    """In the fork: become the submission's pytest process (``inherited``: the server's fds to close). Never returns."""
    code = 70
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        null = os.open(os.devnull, os.O_RDONLY)
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        for fd in inherited | {null, log}:
            if fd > 2:
                os.close(fd)
        os.chdir(request["cwd"])
        sys.path[0] = os.getcwd()  # as `python -m pytest` started in that folder
        sys.argv = [sys.argv[0], *request["args"]]
        code = importlib.import_module("grader.pytest_process").main(list(request["args"]))
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # a bug of the grader: say so in the log, as a cold process would
        import traceback

        traceback.print_exc()
        code = 70
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


class _Server:
    """The warm process's loop: requests on stdin, one pidfd per running fork, replies on stdout."""

    def __init__(self) -> None:
        self.out = sys.stdout.buffer
        self.requests = sys.stdin.buffer.fileno()
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.requests, selectors.EVENT_READ, None)
        self.forks: dict[int, tuple[int, int]] = {}  # id -> (pid, pidfd)
        self.pending = b""
        self.open_input = True
        self.prebuilt: set[Any] = set()  # the plugins of the gradings prebuild() built configurations for

    def reply(self, message: dict[str, Any]) -> None:
        self.out.write((json.dumps(message) + "\n").encode("utf-8"))
        self.out.flush()

    def serve(self) -> None:
        while self.open_input or self.forks:
            for key, _ in self.selector.select():
                if key.data is None:
                    self.read_requests()
                else:
                    self.reap(key.data)

    def read_requests(self) -> None:
        chunk = os.read(self.requests, 65536)
        if not chunk:  # the grader closed us: forks still running end on their own
            self.open_input = False
            self.selector.unregister(self.requests)
            return
        self.pending += chunk
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if "kill" in request:
                self.kill(request["kill"])
            else:
                self.start(request)

    def start(self, request: dict[str, Any]) -> None:
        ident = request.get("id")
        if not isinstance(ident, int):
            return
        inherited = {self.selector.fileno(), *(fd for _, fd in self.forks.values())}
        try:
            pid = os.fork()
        except OSError as exc:
            self.reply({"id": ident, "error": f"fork failed: {exc}"})
            return
        if pid == 0:
            _child(request, inherited)
        pidfd = os.pidfd_open(pid)
        self.forks[ident] = (pid, pidfd)
        self.selector.register(pidfd, selectors.EVENT_READ, ident)
        self.reply({"id": ident, "pid": pid})
        args = request.get("args")
        if isinstance(args, list) and all(isinstance(a, str) for a in args):
            process = importlib.import_module("grader.pytest_process")
            if process.plugin_args(args) not in self.prebuilt:  # the later forks with the same plugins (and their
                self.prebuilt.add(process.plugin_args(args))  # check workers) start from pytest's configuration
                process.prebuild(args)  # objects, built here once after the first fork
                gc.freeze()  # never garbage either: the forks' collections skip it

    def kill(self, ident: int) -> None:
        entry = self.forks.get(ident)
        if entry is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(entry[1], signal.SIGKILL)

    def reap(self, ident: int) -> None:
        pid, pidfd = self.forks.pop(ident)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, status = os.waitpid(pid, 0)
        self.reply({"id": ident, "exit": os.waitstatus_to_exitcode(status)})


def main(argv: list[str] | None = None) -> int:
    """``python -m grader.grading.warm [MODULE...]``: preload, then serve forks until stdin closes."""
    _preload(list(argv if argv is not None else sys.argv[1:]))
    # The sandboxes' own warm process: each fork of this one finds its channel in the environment.
    sandboxes = served.start_server()
    # What was preloaded is never garbage: a fork's collections skip it rather than walk (and so copy) its pages.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the forks; the grader closes us
    _Server().serve()
    if sandboxes is not None:  # its last holder of the channel is this process: it ends, and its CPU is counted here
        served.stop_server(sandboxes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
