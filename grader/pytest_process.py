"""A grading's pytest process, with its check workers forked warm.

``python -m grader.pytest_process ARGS`` is ``python -m pytest ARGS``
(:func:`grader.grading.grade.pytest_command`; the warm forks of :mod:`grader.grading.warm`
call :func:`main` the same way). The difference is in how pytest-xdist's check workers start.

With ``--check-workers K``, xdist starts K workers through execnet's ``popen`` gateway: each
is a new interpreter that imports pytest, its plugins, execnet and the grader again before its
first check, about 0.3 s of CPU each here, a quarter of what ``grader check`` spends on the
trusted side. Here they are forks instead:

- before ``pytest.main`` runs, while this process is one thread and nothing of pytest is
  configured yet, it imports what a worker needs and forks K children;
- each child waits on a pipe for the line a new interpreter would read from its stdin (execnet's
  bootstrap, ``import sys;exec(eval(sys.stdin.readline()))``), then runs it with the pipes as its
  stdin and stdout. From there it is the same execnet worker: xdist sends it the same
  ``xdist.remote``, and it configures pytest, collects and runs its checks as a new interpreter
  would;
- execnet gets the children as the IO of xdist's first K ``popen`` gateways (its ``create_io``
  is wrapped). Any other gateway, such as the one xdist starts to replace a crashed worker, is a
  new interpreter as before;
- a child that no gateway took sees its pipe close when this process ends, and exits.

A child holds nothing of a grading: it is forked before any config, check, sandbox or student
code exists, with only modules imported. Its stderr is the pytest process's, as a new worker's
would be. Where ``os.fork`` is missing, or with no ``-n K`` on the command line, this is plain
``pytest.main``.

A warm process (:mod:`grader.grading.warm`) also builds, once, what ``pytest.main`` builds first
whatever most of its arguments: the plugin manager with pytest's default plugins and the grading's
own (``-p NAME``) registered, and the configuration object their options were added to (pytest's
``get_config``, about 12 ms of CPU, and registering the plugins named, about 5 ms, most of it
reading the entry points of every installed package). It does so after its first fork, from that
grading's arguments (:func:`prebuild`). In each later fork, :func:`main` hands that fork's copy to
``pytest.main`` in place of a new one. Only the plugins named and blocked (``-p no:NAME``) and the
program name enter it, and it is used only for a call with the same ones; its invocation
parameters (the arguments and the folder) are set to the fork's own. A fork's copy is its own:
nothing of one grading's configuration reaches another. It builds a second one, without the program
name, for the gradings' check workers: pytest-xdist builds a worker's from the grading's arguments,
about 30 ms of CPU in each (where no warm process built it, the pytest process builds it once before it
forks its workers). One pair is built for each set of plugins the gradings name: the last gradings of
a batch also name pytest-xdist's.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import gc
import importlib
import os
import pathlib
import platform
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from grader.processes import pidfd_of

__all__ = ["main", "plugin_args", "prebuild", "worker_count"]

PRELOAD = (
    "execnet",
    "execnet.gateway_base",
    "execnet.gateway_io",
    "execnet.multi",
    "xdist.plugin",
    "xdist.dsession",
    "xdist.remote",
    "xdist.workermanage",
    "pytest_timeout",
    "grader.plugin",
    "grader.checks",
    "grader.evidence",
    "grader.checks.submission",
    "grader.sandbox.sandbox",
    "grader.sandbox.launch",
)
"""What a check worker imports before its first check, imported once here instead of in every worker."""


@dataclass
class _Fork:
    pid: int
    to_child: int
    from_child: int
    pidfd: int | None = None  # kills it, never another process that got its pid after it was reaped


_FORKS: list[_Fork] = []
"""Forked workers no gateway has taken yet, in the order they were forked."""


def worker_count(args: list[str]) -> int:
    """The number of check workers ``args`` asks pytest-xdist for (``-n K``), 0 without."""
    for i, arg in enumerate(args):
        value = args[i + 1] if arg in ("-n", "--numprocesses") and i + 1 < len(args) else None
        if value is None and arg.startswith("-n") and arg[2:].isdigit():
            value = arg[2:]
        if value is not None:
            return int(value) if value.isdigit() else 0
    return 0


def plugin_args(args: list[str]) -> tuple[tuple[str, ...], frozenset[str]]:
    """The plugins ``args`` name with ``-p NAME`` (in order) and those they block (``-p no:NAME``, ``-pno:NAME``)."""
    named, blocked = [], []
    for i, arg in enumerate(args):
        value = args[i + 1] if arg == "-p" and i + 1 < len(args) else arg[2:] if arg.startswith("-p") else ""
        if value.startswith("no:"):
            blocked.append(value[3:])
        elif value:
            named.append(value)
    return tuple(named), frozenset(blocked)


Plugins = tuple[tuple[str, ...], frozenset[str]]
"""The plugins a grading's arguments name with ``-p NAME`` (in order) and block with ``-p no:NAME``."""
_PREBUILT: dict[tuple[str, Plugins], tuple[str | None, Any]] = {}
"""What :func:`prebuild` built, by whom it is for (:data:`GRADING`, :data:`WORKER`) and the plugins it has: the
program name it was built with, and pytest's configuration object."""
_FOR_WORKERS: list[str] = []
"""The grading's arguments, in the check workers it forks: the prebuilt configuration they take is the one for them."""
GRADING = "grading"
"""A grading's pytest process: ``pytest.main`` builds its configuration, with the program name :data:`PROG`."""
WORKER = "worker"
"""A check worker of a grading: pytest-xdist builds its configuration from the grading's arguments, with no program
name."""
PROG = "pytest.main()"
"""The program name ``pytest.main`` gives pytest's ``get_config`` (from pytest 9.1), for its usage lines."""
PREBUILT_MARK: Any = None
"""The ``pytest.StashKey`` :func:`prebuild` sets in the ``config.stash`` of what it built (``None`` until it ran)."""


def prebuild(args: list[str], roles: tuple[str, ...] = (GRADING, WORKER)) -> None:
    """In a process that forks gradings or check workers: build pytest's configuration objects once, for the forks.

    One for each of ``roles``: a grading's pytest process, whose ``pytest.main`` asks for one
    with a program name (from pytest 9.1), and its check workers, which pytest-xdist starts with
    the grading's arguments and no program name. Built with the plugins ``args`` (a grading's
    arguments) block, then those they name registered in the same order, as pytest would (each
    ``-p NAME`` also makes pytest read the entry points of every installed package); used by forks
    whose arguments name and block the same ones (one set is kept for each set of plugins: a
    batch's last gradings also name pytest-xdist's). Nothing is built with ``PYTEST_DEBUG`` set
    (its trace writer would be this process's stderr), nor where pytest's ``get_config`` is not
    what this module knows; the forks then build their own, as they would anyway.
    """
    plugins = plugin_args(args)
    for role in roles:
        _PREBUILT.pop((role, plugins), None)
    if os.environ.get("PYTEST_DEBUG"):
        return
    for role in roles:
        built = _build(plugins, PROG if role == GRADING else None)
        if built is not None:
            _PREBUILT[(role, plugins)] = built


def _build(plugins: Plugins, prog: str | None) -> tuple[str | None, Any] | None:
    global PREBUILT_MARK
    try:
        import pytest
        from _pytest import config as pytest_config

        blocking = [arg for name in sorted(plugins[1]) for arg in ("-p", f"no:{name}")]
        try:
            built = pytest_config.get_config(blocking, prog=prog)
        except TypeError:  # before pytest 9.1, pytest.main gives no program name
            prog, built = None, pytest_config.get_config(blocking)
        if not isinstance(getattr(built, "invocation_params", None), pytest_config.Config.InvocationParams):
            return None
        for name in plugins[0]:
            built.pluginmanager.import_plugin(name, consider_entry_points=True)
        PREBUILT_MARK = PREBUILT_MARK or pytest.StashKey[bool]()
        built.stash[PREBUILT_MARK] = True
    except Exception:  # a pytest this module does not know, or a plugin that fails: each fork builds its own
        return None
    return prog, built


def _hand_over_prebuilt(role: str, args: list[str]) -> None:
    """Make the next ``get_config`` of pytest return this fork's copy of the configuration prebuilt for ``role``, once.

    Only a call for the plugins of ``args`` takes it. The others stay where they are: a grading's
    pytest process keeps its workers' for the forks it makes.
    """
    wanted = plugin_args(args)
    entry = _PREBUILT.pop((role, wanted), None)
    if entry is None:
        return
    prog, built = entry
    from _pytest import config as pytest_config

    original = pytest_config.get_config

    def get_config(args: Any = None, plugins: Any = None, **kwargs: Any) -> Any:
        pytest_config.get_config = original
        if plugins or kwargs.get("prog") != prog or plugin_args(list(args or ())) != wanted:
            return original(args, plugins, **kwargs)
        built.invocation_params = pytest_config.Config.InvocationParams(
            args=tuple(args or ()), plugins=plugins, dir=pathlib.Path.cwd()
        )
        return built

    pytest_config.get_config = get_config


OWN_PLUGINS = ("_pytest.", "pytest_timeout", "xdist.", "grader.")
"""Modules whose plugins' attributes pytest need not look through for fixtures hidden behind decorators."""


def _skip_wrapped_fixture_check_for_own_plugins() -> None:
    """Let pytest's fixture parse skip its check for wrapped fixtures in pytest's, xdist's and the grader's plugins.

    From pytest 9, parsing a plugin's fixtures also unwraps each of its attributes to warn about a
    fixture hidden behind a decorator: about 5 ms of CPU in every grading's pytest process and check
    worker, for plugins that have none. The check still runs for everything else: the assignment's test
    modules and ``conftest.py`` files, and any other plugin. Where pytest has no such check, or parses
    fixtures otherwise, nothing changes.
    """
    try:
        from _pytest import fixtures

        manager: Any = fixtures.FixtureManager
        parse, check = manager.parsefactories, manager._check_for_wrapped_fixture
    except (ImportError, AttributeError):
        return
    if getattr(parse, "_grader_own_plugins", False) or not callable(check):
        return

    def parsefactories(self: Any, *args: Any, **kwargs: Any) -> Any:
        holder = kwargs.get("holder")
        owner = holder.__name__ if isinstance(holder, type(sys)) else type(holder).__module__
        if holder is None or not isinstance(owner, str) or not owner.startswith(OWN_PLUGINS):
            return parse(self, *args, **kwargs)
        try:
            self._check_for_wrapped_fixture = _no_check
        except AttributeError:  # a manager whose attributes are fixed: the check runs
            return parse(self, *args, **kwargs)
        try:
            return parse(self, *args, **kwargs)
        finally:
            del self._check_for_wrapped_fixture

    parsefactories._grader_own_plugins = True  # type: ignore[attr-defined]
    manager.parsefactories = parsefactories


def _no_check(name: str, obj: object) -> None:
    return None


def main(args: list[str] | None = None) -> int:
    """Run pytest with ``args`` (default: this command's), its first check workers forked warm."""
    import pytest

    args = list(sys.argv[1:] if args is None else args)
    _skip_wrapped_fixture_check_for_own_plugins()
    count = worker_count(args)
    if count > 1 and hasattr(os, "fork") and threading.active_count() == 1:
        _fork_workers(count, args)  # first: the workers start from pytest's own get_config
    _hand_over_prebuilt(GRADING, args)
    return int(pytest.main(args))


# ---------------------------------------------------------------------------------------------
# The pytest process's side


def _fork_workers(count: int, args: list[str]) -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # no xdist here: pytest says so itself
            return
    from execnet import gateway_io

    if not callable(getattr(gateway_io, "create_io", None)) or not hasattr(gateway_io, "Popen2IOMaster"):
        return  # an execnet this module does not know: its workers start as new interpreters
    importlib.import_module("grader.sandbox.folder").inside_bytecode()  # compiled once, not in each worker
    platform.platform()  # cached: each worker's xdist asks for it, which reads the interpreter's file and runs `uname -p`
    if (WORKER, plugin_args(args)) not in _PREBUILT:  # not inherited from a warm process: built here once, not in
        prebuild(args, (WORKER,))  # each worker
    _FOR_WORKERS[:] = args
    gc.collect()
    gc.freeze()  # what is imported is never garbage: the children's collections skip it (kept frozen here too)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for _ in range(count):
        try:
            _fork_one()
        except OSError:  # no more processes or pipes: the other workers start as new interpreters
            break
    _take_over_create_io(gateway_io)


def _fork_one() -> None:
    down_read, down_write = os.pipe()
    up_read, up_write = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        for fd in (down_read, down_write, up_read, up_write):
            os.close(fd)
        raise
    if pid == 0:
        inherited = [fd for f in _FORKS for fd in (f.to_child, f.from_child, f.pidfd) if fd is not None]
        _child(down_read, up_write, [down_write, up_read, *inherited])
    os.close(down_read)
    os.close(up_write)
    _FORKS.append(_Fork(pid, down_write, up_read, pidfd_of(pid)))


def _take_over_create_io(gateway_io: Any) -> None:
    """Wrap execnet's ``create_io``: the first ``popen`` gateways get the forks, the others what they got before."""
    original = gateway_io.create_io

    class ForkedIO(gateway_io.Popen2IOMaster):  # type: ignore[misc]
        """A gateway's IO to a forked child: the pipes of its stdin and stdout, and the child for ``wait`` and ``kill``."""

        def __init__(self, fork: _Fork, execmodel: Any) -> None:
            self.popen = _Child(fork.pid, fork.pidfd)
            stdin, stdout = os.fdopen(fork.to_child, "wb"), os.fdopen(fork.from_child, "rb")
            super(gateway_io.Popen2IOMaster, self).__init__(stdin, stdout, execmodel=execmodel)  # not its Popen

    def create_io(spec: Any, execmodel: Any) -> Any:
        if spec.popen and not spec.python and not spec.via and _FORKS:
            return ForkedIO(_FORKS.pop(0), execmodel)
        return original(spec, execmodel)

    gateway_io.create_io = create_io


class _Child:
    """What execnet asks of the ``subprocess.Popen`` of a gateway (``wait``, ``kill``), for a forked child.

    ``kill`` does not take the lock ``wait`` holds while it blocks (a kill must not wait for the child
    it ends), so it may run while ``wait`` reaps. Through the child's pidfd it then signals nothing:
    the pidfd names that process, never one that got its pid later. The pidfd stays open while the
    pytest process lives (one per check worker), so that its number is not reused either.
    """

    def __init__(self, pid: int, pidfd: int | None = None) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.returncode: int | None = None
        self._lock = threading.Lock()

    def wait(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    _, status = os.waitpid(self.pid, 0)
                except ChildProcessError:
                    return None
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.kill(self.pid, signal.SIGKILL)


# ---------------------------------------------------------------------------------------------
# The child's side


def _child(down: int, up: int, others: list[int]) -> None:
    """In the fork: wait for execnet's bootstrap line on ``down``, then serve as its worker. Never returns."""
    code = 1
    try:
        for fd in others:
            os.close(fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        line = _read_line(down)
        if not line:  # the pytest process ended without this worker
            code = 0
            return
        os.dup2(down, 0)
        os.dup2(up, 1)
        for fd in (down, up):
            if fd > 2:
                os.close(fd)
        _hand_over_prebuilt(WORKER, _FOR_WORKERS)
        exec(eval(line), {"__name__": "__main__", "__builtins__": builtins})  # noqa: S102, S307 - execnet's bootstrap, from our parent
        atexit._run_exitfuncs()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group: end quietly, as pytest does
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _read_line(fd: int) -> str:
    """One line from ``fd``, read a byte at a time: what follows it is execnet's, and stays in the pipe."""
    data = bytearray()
    while not data.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return ""
        data += byte
    return data.decode("utf-8")


if __name__ == "__main__":
    sys.exit(main())
