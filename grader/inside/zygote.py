"""``spawn`` children cloned from a warm copy of the sandbox's first process instead of new interpreters.

Runs on the untrusted side, Linux only. A ``spawn`` child is a new interpreter (``python -c "from
multiprocessing.spawn import spawn_main; ..."``) that spends about 40 ms of CPU starting and importing
``multiprocessing``, ``json`` and the probes before it reads a byte of what its parent sent it; a
class of 24 locked_counter submissions starts about 170 of them. The boot script forks one *zygote* from the sandbox's
first process before anything of the student's has run (:func:`start`): an interpreter in the state
every ``spawn`` child of the sandbox reaches after that start-up, which then only waits. When the
student's code starts a ``spawn`` child from the first process, ``multiprocessing`` calls
``util.spawnv_passfds``; the boot script's wrapper of it hands the request to the zygote
(:func:`request`), and the zygote clones itself with ``CLONE_PARENT``: the clone is the first
process's child, as an ``execve``'d child would be, so ``multiprocessing`` waits for it, reads its exit
code and signals it exactly as before. The clone puts itself in the state the new interpreter would
have had (:func:`become`) and runs the same program; ``spawn_main`` then reads the parent's data,
re-runs the boot script as ``__mp_main__`` (the guard and the probes; compiled once, by the zygote),
imports the student's module afresh and runs the target: nothing of the student's is in the memory it starts from.

What the clone takes from the first process at the moment of the request, as ``execve`` would have:
its descriptors 0, 1 and 2 and those ``multiprocessing`` passes (at the same numbers, every other one
closed), its environment, working folder, umask, resource limits, CPU affinity, priority and the
signals it ignores. ``sys.argv``, ``sys.orig_argv``, ``sys.path`` and ``__main__`` are a new
interpreter's; the interpreter's flags and hash seed are the sandbox's, which the student's code
cannot change. What differs: the command line the kernel shows is the first process's, and the
modules the zygote had loaded (only the standard library's and the grader's own, as the child loads
anyway) are loaded already. A clone ends as the new interpreter would (:func:`leave`: its threads joined, its
``atexit`` handlers run, its files flushed, its exit code), but without freeing the objects it shares with the zygote.

Everything else starts a new interpreter as before: a request the zygote cannot serve (another
executable or interpreter options, a process group or session the first process changed, a child
started by a child, a fork of the first process asking), ``forkserver`` and the resource tracker.
The zygote shows itself to the trusted side as a helper of ``multiprocessing`` (its command line
reads :data:`MARK`), ends when the first process has closed its end of the channel, and is killed
when the first process dies.
"""

import json
import os
import signal
import socket
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every sandbox's first process
    from typing import Any

MARK = b"python3 -m grader_inside.zygote"
"""The zygote's command line as the kernel shows it; the trusted side counts it among ``multiprocessing``'s helpers."""
CLONE_PARENT = 0x00008000
CLONE_CHILD_SETTID = 0x01000000
SYS_CLONE = {"x86_64": (56, 3), "aarch64": (220, 4)}
"""``clone``'s system call number, and which of its arguments is ``child_tid``."""
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
MAX_FDS = 32
LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_DATA",
          "RLIMIT_STACK", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_SIGPENDING")

OWN_MODULES = {"ctypes", "ctypes._endian", "fcntl"}
"""Modules the zygote imports for itself (to clone, to move descriptors): a clone drops those the first process had not."""
_first_modules: "set[str]" = set()
"""The modules the first process had loaded when it forked the zygote."""
_channel: "dict[str, Any] | None" = None
"""In the first process: the zygote's channel and what a request must match to be served there."""


def _syscall_number() -> "tuple[int, int] | None":
    if not sys.platform.startswith("linux"):
        return None
    return SYS_CLONE.get(os.uname().machine)


def _thread_id_field(ctypes: "Any", libc: "Any") -> "int | None":
    """Where the C library keeps this (main) thread's kernel id, which ``fork`` has the kernel rewrite in the child.

    A clone made by a bare system call would keep the zygote's there (``pthread_kill`` of its main thread from
    another thread would then miss). The field is at the same offset in every thread's descriptor
    (``pthread_self()``; glibc: 0x2d0 on x86_64); pids are small in a PID namespace, so it is the one offset at which
    this thread's descriptor holds this thread's id and a short-lived thread's holds that thread's. ``None`` where
    there is not exactly one such offset.
    """
    import _thread

    try:
        libc.pthread_self.restype = ctypes.c_void_p
        gettid = 186 if os.uname().machine == "x86_64" else 178

        def offsets() -> "set[int]":
            raw, tid = ctypes.string_at(libc.pthread_self(), 4096), libc.syscall(gettid)
            return {at for at in range(0, len(raw), 4) if int.from_bytes(raw[at:at + 4], sys.byteorder) == tid}

        found: list[set[int]] = []
        done = _thread.allocate_lock()
        done.acquire()

        def other() -> None:
            try:
                found.append(offsets())
            finally:
                done.release()

        _thread.start_new_thread(other, ())
        done.acquire()
        while len(os.listdir("/proc/self/task")) > 1:  # cloned only once the thread is gone, none of its locks held
            os.sched_yield()
        hits = offsets() & found[0]
    except (AttributeError, OSError, ValueError, IndexError, RuntimeError):
        return None
    return libc.pthread_self() + hits.pop() if len(hits) == 1 else None


def _arguments_area() -> "tuple[int, int] | None":
    """Where the kernel reads this process's command line from (``/proc/self/stat``'s ``arg_start``, ``arg_end``)."""
    try:
        with open("/proc/self/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
    except (OSError, IndexError, ValueError):
        return None
    return (start, end) if end - start > len(MARK) else None


def start(script_dir: str) -> None:
    """In the sandbox's first process, before its guard and before anything of the student's: fork the zygote.

    Returns in the first process (with or without a zygote) and, in a clone the zygote made for a request,
    raises :class:`Cloned`.
    """
    global _channel
    clone = _syscall_number()
    area = _arguments_area() if clone is not None else None
    if clone is None or area is None:
        return
    from multiprocessing import spawn, util

    base_path = [p for p in sys.path if os.path.abspath(p or ".") != script_dir]
    expected = [spawn.get_executable(), *util._args_from_interpreter_flags()]  # type: ignore[attr-defined]
    try:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    except (OSError, AttributeError):
        return
    parent = os.getpid()
    _first_modules.update(sys.modules)
    try:
        pid = os.fork()
    except OSError:
        mine.close()
        theirs.close()
        return
    if pid == 0:
        mine.close()
        _serve(theirs, clone, area, base_path, parent)  # leaves only in a clone, by raising Cloned
        os._exit(0)
    theirs.close()
    import _thread

    _channel = {"socket": mine, "lock": _thread.allocate_lock(), "owner": os.getpid(), "expected": expected,
                "group": (os.getpgrp(), os.getsid(0))}


class Cloned(BaseException):
    """Raised in a clone: it leaves the zygote's loop and the boot script, and runs :attr:`code` in :attr:`namespace`."""

    def __init__(self, code: "Any", namespace: dict) -> None:
        super().__init__()
        self.code = code
        self.namespace = namespace


def request(path: "Any", args: "list[Any]", passfds: "Any") -> "int | None":
    """In the first process: the pid of a ``spawn`` child the zygote cloned for ``args``; ``None`` to start one as usual."""
    channel = _channel
    if channel is None or os.getpid() != channel["owner"]:
        return None
    expected = channel["expected"]
    at = len(expected)
    if (list(args[:at]) != expected or path != expected[0] or len(args) != at + 3 or args[at] != "-c"
            or not isinstance(args[at + 1], str) or args[at + 2] != "--multiprocessing-fork"):
        return None
    if (os.getpgrp(), os.getsid(0)) != channel["group"]:
        return None
    try:
        targets = [0, 1, 2] + sorted({int(fd) for fd in passfds} - {0, 1, 2})
    except (TypeError, ValueError):
        return None
    if len(targets) > MAX_FDS or max(targets) + len(targets) + 1 >= _fd_limit():
        return None  # the clone moves each descriptor above every number first: it must stay under the limit
    message = json.dumps({
        "args": [os.fsdecode(a) for a in args], "targets": targets, "cwd": os.getcwd(),
        "env": [[os.fsdecode(k), os.fsdecode(v)] for k, v in os.environb.items()],
        "umask": _umask(), "ignored": [int(s) for s in _ignored()],
    }).encode("ascii")
    if len(message) > MAX_MESSAGE:
        return None
    with channel["lock"]:
        try:
            socket.send_fds(channel["socket"], [message], targets)
        except OSError:
            return None  # nothing reached the zygote (a descriptor closed, the zygote gone): start one as usual
        reply = channel["socket"].recv(64)  # the zygote has the request: an error here is the start's error
    if reply.startswith(b"pid ") and reply[4:].isdigit():
        return int(reply[4:])
    if reply == b"no":
        return None
    raise OSError("the sandbox's zygote did not answer")


def _umask() -> int:
    try:
        with open("/proc/self/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _ignored() -> "list[int]":
    out = []
    for sig in signal.valid_signals():
        try:
            if signal.getsignal(sig) == signal.SIG_IGN:
                out.append(int(sig))
        except (OSError, ValueError):
            continue
    return out


def _command_line(start: int, data: "bytes | None" = None, size: int = 0) -> bytes:
    """Read ``size`` bytes of this process's command line (``data`` None), or write ``data`` over it, at ``start``."""
    with open("/proc/self/mem", "r+b", buffering=0) as memory:
        memory.seek(start)
        if data is None:
            return memory.read(size)
        memory.write(data)
        return data


def _clone_call(clone: "tuple[int, int]", parent: int) -> "Any":
    """At the zygote's first request: die with the first process from now on; a function making one clone."""
    import ctypes

    libc = ctypes.PyDLL(None, use_errno=True)  # PyDLL: the clone happens with the GIL held, as os.fork does
    try:
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the first process died before the prctl took effect
        os._exit(0)
    libc.syscall.restype = ctypes.c_long
    tid_field = _thread_id_field(ctypes, libc)
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_void_p]
    number, child_tid_at = clone
    flags = CLONE_PARENT | int(signal.SIGCHLD) | (CLONE_CHILD_SETTID if tid_field is not None else 0)
    arguments: list[Any] = [None, None, None, None]
    arguments[child_tid_at - 1] = tid_field
    api = ctypes.pythonapi

    def clone_once() -> int:
        """``os.fork`` with ``CLONE_PARENT``: the same steps around a ``clone`` the caller's parent gets the child of."""
        api.PyOS_BeforeFork()
        pid = int(libc.syscall(number, flags, *arguments))
        if pid == 0:
            api.PyOS_AfterFork_Child()
        else:
            api.PyOS_AfterFork_Parent()
        return pid

    return clone_once


def _preload() -> None:
    """Modules every child of the run imports before its target runs, imported once here instead of in each clone.

    The first process imported its probes' modules before forking the zygote (``probes.preload``). Left are what a
    ``spawn`` child's program imports (``pkgutil``, and with it ``typing``) and what a child unpickles from its
    arguments (``multiprocessing``'s locks, queues and connections): from the standard library, since nothing of
    the student's folder is on ``sys.path`` here.
    """
    for name in ("pkgutil", "multiprocessing.synchronize", "multiprocessing.queues", "multiprocessing.connection"):
        try:
            __import__(name)
        except ImportError:
            continue


def _compile_main_once() -> None:
    """Compile the first process's main script (the boot script) once here, for every clone that runs it again.

    ``spawn_main`` re-runs it as ``__mp_main__`` through ``runpy.run_path``, which reads and compiles it
    (about 1 ms of CPU in each child). ``runpy``'s reader is given the code compiled here, under the same
    file name ``multiprocessing`` passes, for as long as the file reads as it did here; any other file, or
    this one changed, is read and compiled as before.
    """
    try:
        import runpy
        from multiprocessing import process

        main_path: Any = sys.modules["__main__"].__file__
        original_dir: Any = getattr(process, "ORIGINAL_DIR", None)
        if not os.path.isabs(main_path) and original_dir is not None:
            main_path = os.path.join(original_dir, main_path)
        name: str = os.path.normpath(main_path)  # as multiprocessing.spawn.get_preparation_data writes it
        with open(name, "rb") as handle:
            source = handle.read()
        code = compile(source, name, "exec")
        original = runpy._get_code_from_file  # type: ignore[attr-defined]
        arguments = original.__code__.co_argcount
    except (AttributeError, KeyError, TypeError, ImportError, OSError, SyntaxError, ValueError):
        return
    # (run_name, fname) -> (code, fname) before Python 3.13, (fname) -> code from it; another reader is left alone
    if arguments not in (1, 2):
        return

    def _get_code_from_file(*args: "Any") -> "Any":
        if len(args) == arguments and args[-1] == name:
            try:
                with open(name, "rb") as handle:
                    same = handle.read() == source
            except OSError:
                same = False
            if same:
                return (code, name) if arguments == 2 else code
        return original(*args)

    runpy._get_code_from_file = _get_code_from_file  # type: ignore[attr-defined]


def _serve(sock: socket.socket, clone: "tuple[int, int]", area: "tuple[int, int]", base_path: "list[str]",
           parent: int) -> None:
    """The zygote's loop: one clone per request, until the first process closes the channel.

    Until the first request it costs a fork, a command line rewritten and a wait: most runs start no child.
    """
    start, end = area
    try:
        original = _command_line(start, size=end - start)
        _command_line(start, MARK + b"\0" * (end - start - len(MARK)))
    except OSError:  # not marked, it would pass for a process of the student's hiding from the probes
        os._exit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import gc

    gc.freeze()  # the clones' collections skip (and so do not copy) what the zygote holds
    clone_once = None
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        try:
            wanted = json.loads(message)
            if len(fds) != len(wanted["targets"]):
                raise ValueError("descriptors")
        except (ValueError, KeyError, TypeError):
            _close(fds)
            sock.send(b"no")
            continue
        if clone_once is None:
            _preload()
            _compile_main_once()
            clone_once = _clone_call(clone, parent)
            gc.freeze()
        pid = clone_once()
        if pid == 0:
            try:
                _command_line(start, original)  # the first process's again: the clone is the student's
            except OSError:
                os._exit(1)
            sock.close()
            raise become(wanted, fds, base_path)
        _close(fds)
        sock.send(b"no" if pid < 0 else b"pid %d" % pid)


def leave(status: "Any") -> None:
    """End a clone whose program ended with ``sys.exit(status)`` (``spawn_main`` does) as the new interpreter would end.

    That interpreter would print a ``status`` that is neither ``None`` nor an ``int``, wait for its threads, run
    the ``atexit`` handlers and flush ``sys.stdout`` and ``sys.stderr``: so does the clone, in that order. It would
    then free every object it holds, closing the files still open. Most of a clone's objects are the zygote's,
    shared with it until written: freeing them would copy page after page, as much CPU as a short child's own work.
    So the clone flushes every file object created since it was cloned (the student's among them) and ends with
    ``os._exit``. Python does not promise to call ``__del__`` of objects still alive at exit: those are not called.
    """
    if status is None:
        code = 0
    elif isinstance(status, int):
        code = status if -(1 << 31) <= status < (1 << 31) else -1
    else:
        code = 1
        try:
            sys.stderr.write(f"{status}\n")
        except Exception:
            pass
    threading = sys.modules.get("threading")
    if threading is not None and hasattr(threading, "_shutdown"):
        threading._shutdown()  # type: ignore[attr-defined]
    import atexit
    import gc
    import io

    atexit._run_exitfuncs()
    opened = [obj for generation in (0, 1, 2) for obj in gc.get_objects(generation) if isinstance(obj, io.IOBase)]
    for stream in [sys.stdout, sys.stderr, *sorted(opened, key=lambda obj: not isinstance(obj, io.TextIOBase))]:
        try:  # text first: what it holds goes into its binary buffer, flushed next
            if stream is not None and not stream.closed:
                stream.flush()
        except Exception:
            continue
    os._exit(code)


def _close(fds: "list[int]") -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            continue


def _fd_limit() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (AttributeError, OSError, ValueError):
        return 1024


def _descriptors(fds: "list[int]", targets: "list[int]") -> None:
    """Each received descriptor at the number it had in the first process; every other one closed."""
    import fcntl

    high = max([*fds, *targets]) + 1
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, high) for fd in fds]
    keep = set(moved)
    os.closerange(0, high)
    for fd in range(high, max(moved) + 1):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                continue
    os.closerange(max(moved) + 1, _fd_limit())
    for fd, target in zip(moved, targets):
        os.dup2(fd, target)
        os.close(fd)


def _like_parent() -> None:
    """Resource limits, CPU affinity and priority as the first process has them now (an ``execve`` keeps them)."""
    parent = os.getppid()
    try:
        import resource

        for name in LIMITS:
            which = getattr(resource, name, None)
            if which is None:
                continue
            wanted = resource.prlimit(parent, which)
            if resource.getrlimit(which) != wanted:
                resource.setrlimit(which, wanted)
    except (ImportError, OSError, ValueError):
        pass
    try:
        affinity = os.sched_getaffinity(parent)
        if affinity != os.sched_getaffinity(0):
            os.sched_setaffinity(0, affinity)
        priority = os.getpriority(os.PRIO_PROCESS, parent)
        if priority != os.getpriority(os.PRIO_PROCESS, 0):
            os.setpriority(os.PRIO_PROCESS, 0, priority)
    except (AttributeError, OSError):
        pass


def become(wanted: dict, fds: "list[int]", base_path: "list[str]") -> Cloned:
    """In a clone: the state the new interpreter ``wanted["args"]`` would start in; what to run there."""
    try:
        _descriptors(fds, list(wanted["targets"]))
        os.environ.clear()
        os.environ.update({k: v for k, v in wanted["env"]})
        try:
            os.chdir(wanted["cwd"])
        except OSError:
            pass
        os.umask(int(wanted["umask"]))
        _like_parent()
        ignored = {int(s) for s in wanted["ignored"]}
        for sig in ignored:
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                continue
        if int(signal.SIGINT) not in ignored:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        args = list(wanted["args"])
        at = args.index("-c")
        sys.orig_argv = args
        sys.argv[:] = ["-c", *args[at + 2:]]
        sys.path[:] = ([] if getattr(sys.flags, "safe_path", False) else [""]) + base_path
        for name in OWN_MODULES - _first_modules:  # the zygote's own, which the first process had not loaded
            sys.modules.pop(name, None)
        import builtins
        import importlib.machinery
        import types

        main = types.ModuleType("__main__")  # a "-c" program's
        main.__dict__.update(__builtins__=builtins, __loader__=importlib.machinery.BuiltinImporter, __spec__=None,
                             __package__=None, __annotations__={})
        sys.modules["__main__"] = main
        code = compile(args[at + 1], "<string>", "exec")
    except BaseException as exc:  # a clone that cannot become the child: it ends as a failed start would
        sys.stderr.write(f"grader sandbox: a spawn child could not start: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(1)
    return Cloned(code, main.__dict__)
