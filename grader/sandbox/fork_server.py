"""A warm first process for sandboxes: forks each sandbox's first process instead of starting two interpreters.

Trusted side, standard library only; a program of its own, never imported by the grader. Without
it, every sandbox starts two interpreters before the student's code runs: the launcher
(:mod:`grader.sandbox.launch`), which contains the process and ``execve``s the second, the
interpreter of the boot script, which imports ``json``, ``multiprocessing`` and the rest of what
the probes need. Each is a fresh interpreter start (about 50 ms of CPU for the two here). This
program is started once, as ``python -S fork_server.py CHANNEL_FD`` with the environment every
sandbox's interpreter starts with (:data:`grader.served.BASE_ENVIRONMENT`), imports the
standard library modules the boot script imports before any probe is installed
(:data:`PRELOAD`), and then only forks. A fork is a sandbox's first process: it runs the
launcher's steps (:func:`launch.prepare`: cgroups, namespaces, private root, limits, the
sandbox's uid) and then, instead of an ``execve``, becomes the boot interpreter in place: the
sandbox's environment, ``sys.argv``, ``sys.path`` and a fresh ``__main__`` running the boot script,
as ``python -S grader_boot.py`` would have them.

What this keeps:

- the server never reads a request. A request is one message on the channel carrying one end of a
  new socket pair; the server forks, and the fork alone reads, on that socket, the launcher's
  configuration file and its stdout, stderr and status descriptors. Nothing of one sandbox (its
  paths, its configuration) is in the memory the next fork starts from; the server holds only the
  pids of its running forks and their sockets;
- only a holder of the channel can ask for a sandbox: it is a socket pair, not a named socket, handed
  down to the grader's own processes and closed in every fork before anything else;
- the interpreter a student's code runs in starts from the same state: the same interpreter, flags
  (``-S`` and those the environment sets: the hash seed, ``-B``, ``-P``), environment, working
  folder, ``sys.argv``, ``sys.path`` (no folder of the server), loaded modules (only standard library
  modules the boot script loads before its guard and probes, for its probes; the server's own are dropped
  from ``sys.modules``) and signal dispositions. ``spawn`` children come from the sandbox's own zygote
  (:mod:`grader.inside.zygote`), served or not.

Protocol on each sandbox's socket (``SOCK_SEQPACKET``; the requester is :mod:`grader.served`)::

    requester -> fork:   b"<config path>\\0<nothing>" with SCM_RIGHTS [stdout, stderr, status]
    server -> requester: b"pid <pid>"        the fork runs
    server -> requester: b"exit <code>"      it ended (negative: killed by that signal), then the socket closes

The server ends once every holder of the channel has closed it and every fork has ended.
"""

import os
import select
import signal
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PRELOAD = (
    "json", "site", "threading", "multiprocessing", "multiprocessing.util", "multiprocessing.process",
    "multiprocessing.resource_tracker", "multiprocessing.spawn", "multiprocessing.context", "multiprocessing.reduction",
    "socket", "signal", "atexit", "itertools", "functools", "collections", "contextlib", "reprlib", "math",
    "importlib.machinery", "importlib.util", "pickle", "runpy", "selectors", "subprocess", "re", "enum", "struct",
    "weakref", "__future__", "traceback", "faulthandler",
    # what the probes import (grader_inside.events.PROBE_IMPORTS), loaded before the guard for the runs that have them
    "multiprocessing.synchronize", "multiprocessing.sharedctypes", "multiprocessing.pool", "multiprocessing.connection",
    "multiprocessing.queues", "queue", "concurrent.futures.process", "concurrent.futures.thread",
)
"""Standard library modules a sandbox's boot script loads before it installs its guard and probes.

``tests/test_fork_server.py`` holds this list to what a fresh ``python -S`` has loaded once it has taken the boot
script's steps before its guard, for a run of every probe: loading them earlier changes nothing, since no probe is
installed before them either way, and a run without these probes finds the standard library's own modules (a file of
the student's named like one fails every check)."""
OWN_MODULES = ("launch", "__main__")
FDS_PER_REQUEST = 3
PR_SET_CHILD_SUBREAPER = 36
MAX_MESSAGE = 4096


class Fork(Exception):
    """Raised in a fork to leave the server's loop: it is a sandbox's first process now."""

    def __init__(self, conn: int) -> None:
        super().__init__(conn)
        self.conn = conn


def _fd_limit() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (AttributeError, OSError, ValueError):
        return 1024


def _descendants(pid: int) -> list:
    """``pid``'s descendants, from ``/proc/PID/task/TID/children`` (those of a PID namespace's init included)."""
    found: list = []
    todo = [pid]
    while todo and len(found) < 100000:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", "rb") as listed:
                    kids = [int(v) for v in listed.read().split()]
            except (OSError, ValueError):
                continue
            found += kids
            todo += kids
    return found


def _end_tree(pid: int) -> None:
    """Kill a fork whose requester is gone, and everything below it: its sandbox has no one to end it any more."""
    for victim in (pid, *_descendants(pid)):
        try:
            os.kill(victim, signal.SIGKILL)
        except OSError:
            continue


def _reap(children: dict, poller: select.poll, wake: int) -> None:
    """Reap every fork (and orphan) that ended; tell each fork's requester how it ended."""
    try:
        while os.read(wake, 512):
            pass
    except (BlockingIOError, InterruptedError):
        pass
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            try:
                poller.unregister(conn)
            except KeyError:
                pass
            try:
                conn.send(b"exit %d" % os.waitstatus_to_exitcode(status))
            except OSError:
                pass
            conn.close()


def _accept(channel: socket.socket, children: dict, poller: select.poll) -> bool:
    """Take one request off the channel and fork for it; ``False`` once no one holds the channel any more."""
    try:
        message, fds, _flags, _addr = socket.recv_fds(channel, 16, 1)
    except InterruptedError:
        return True
    except OSError:
        return False
    if not message and not fds:
        return False
    for fd in fds[1:]:
        os.close(fd)
    if not fds:
        return True
    conn = fds[0]
    try:
        pid = os.fork()
    except OSError:  # no fork now (a task limit): the requester hears nothing and launches the sandbox itself
        os.close(conn)
        return True
    if pid == 0:
        raise Fork(conn)
    peer = socket.socket(fileno=conn)
    children[pid] = peer
    # Only a hang-up wakes the server: the request on this socket is the fork's to read, not the server's.
    poller.register(peer, select.POLLRDHUP)
    try:
        peer.send(b"pid %d" % pid)
    except OSError:
        pass
    return True


def _hung_up(children: dict, poller: select.poll, fd: int) -> None:
    """The requester of a running fork closed its socket (its pytest process died): end the fork's tree."""
    for pid, conn in children.items():
        if conn.fileno() == fd:
            poller.unregister(conn)
            _end_tree(pid)
            return


def serve(channel_fd: int) -> int | None:
    """The server's loop; returns in a fork only, with the fork's socket to its requester."""
    channel = socket.socket(fileno=channel_fd)
    read_wake, write_wake = os.pipe()
    os.set_blocking(read_wake, False)
    os.set_blocking(write_wake, False)
    signal.set_wakeup_fd(write_wake)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the grader, which ends its sandboxes
    poller = select.poll()
    poller.register(channel, select.POLLIN)
    poller.register(read_wake, select.POLLIN)
    children: dict = {}
    open_channel = True
    try:
        while open_channel or children:
            for fd, _events in poller.poll():
                if fd == channel.fileno() and open_channel and not _accept(channel, children, poller):
                    poller.unregister(channel)
                    open_channel = False
                elif fd not in (channel.fileno(), read_wake):
                    _hung_up(children, poller, fd)
            _reap(children, poller, read_wake)
    except Fork as fork:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for owner in (channel, *children.values()):  # objects that would close their fd numbers later
            owner.close()
        keep = fork.conn
        os.closerange(3, keep)
        os.closerange(keep + 1, _fd_limit())
        return keep
    return None


def _request(conn: int) -> tuple[str, int, set]:
    """In the fork: read the request, put its stdout and stderr in place; the configuration's path, status fd and the
    signals the requester ignores."""
    peer = socket.socket(fileno=conn)
    try:
        message, fds, _flags, _addr = socket.recv_fds(peer, MAX_MESSAGE, FDS_PER_REQUEST)
    finally:
        peer.close()
    if len(fds) != FDS_PER_REQUEST or not message:
        os._exit(70)
    out, err, status = fds
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    path, _, ignored = message.partition(b"\0")
    return os.fsdecode(path), status, {int(v) for v in ignored.split(b",") if v.isdigit()}


def _dispositions(ignored: set) -> None:
    """Every signal as an interpreter started by the requester has it: what the requester ignores stays ignored
    through ``execve``, the rest is the default; then Python's own start ignores ``SIGPIPE`` and ``SIGXFSZ`` and
    handles ``SIGINT`` (unless it was ignored)."""
    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        want: object = signal.SIG_IGN if int(sig) in ignored else signal.SIG_DFL
        if sig in (signal.SIGPIPE, getattr(signal, "SIGXFSZ", signal.SIGPIPE)):
            want = signal.SIG_IGN
        elif sig == signal.SIGINT and want == signal.SIG_DFL:
            want = signal.default_int_handler
        try:
            signal.signal(sig, want)  # type: ignore[arg-type]
        except (OSError, ValueError):
            continue


def become(argv: list, env: dict, base_path: list) -> dict:
    """Make this interpreter the one ``argv`` (``python -S SCRIPT``) would start with ``env``; ``__main__``'s namespace."""
    if len(argv) != 3 or argv[1] != "-S":
        os._exit(70)
    script = argv[2]
    os.environ.clear()
    os.environ.update(env)
    sys.argv[:] = [script]
    first = [] if getattr(sys.flags, "safe_path", False) else [os.path.dirname(script)]
    sys.path[:] = first + base_path
    for name in OWN_MODULES:
        sys.modules.pop(name, None)
    import builtins
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__dict__.update(
        __file__=script,
        __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", script),
        __spec__=None,
        __package__=None,
        __builtins__=builtins,
    )
    sys.modules["__main__"] = main
    return main.__dict__


def _preload() -> list:
    """Import :data:`PRELOAD`; ``sys.path`` as the boot interpreter has it, without this program's folder."""
    base_path = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            continue
    sys.path.insert(0, HERE)
    try:
        import launch  # noqa: F401 - the launcher's steps, run in every fork
    finally:
        del sys.path[0]
    try:  # a subreaper: what a sandbox's first process leaves (its PID namespace's init) is reaped here, and counted
        sys.modules["launch"].libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    import gc

    gc.collect()
    gc.freeze()  # the forks' collections skip (and so do not copy) what the server loaded
    return base_path


def _run_boot(namespace: dict) -> None:
    with open(namespace["__file__"], "rb") as handle:
        code = compile(handle.read(), namespace["__file__"], "exec", dont_inherit=True)
    exec(code, namespace)


if __name__ == "__main__":
    _BASE_PATH = _preload()
    _CONN = serve(int(sys.argv[1]))
    if _CONN is None:
        sys.exit(0)
    os.setsid()  # a session of its own, as the launcher's: the grader kills the run's process group
    try:
        _CONFIG, _STATUS, _IGNORED = _request(_CONN)
        _ARGV, _ENV = sys.modules["launch"].prepare(_CONFIG, _STATUS, served=True)
        _dispositions(_IGNORED)
    except BaseException as exc:  # the sandbox reports a run that never started
        sys.stderr.write(f"grader sandbox could not start: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(70)
    _run_boot(become(_ARGV, _ENV, _BASE_PATH))
