"""First program of a sandbox: contain this process, then become (or, in a PID namespace, start) the student's Python.

Trusted side, standard library only. The sandbox starts it as
``python -I -S launch.py CONFIG STATUS_FD`` in a new session; it reads its
configuration (a ``marshal`` file the sandbox wrote, only root can read it when running as root), then, in
this order, with each step best-effort where the platform allows it:

1. joins the sandbox's cgroups (``pids`` and ``memory``, cgroup v1), so the
   whole tree is counted and capped together and found by the grader;
2. ``unshare``s a network namespace (no interface but a loopback that is
   down: every connection fails), a mount namespace, an IPC namespace (System
   V shared memory, semaphores and message queues die with the run) and a PID
   namespace; without root, inside a new user namespace that maps only the
   current uid;
3. builds a minimal root file system in the mount namespace and ``chroot``s
   into it: the system's ``/usr``, ``/lib*``, ``/bin``, ``/etc`` and ``/sys``
   read-only, the Python installation read-only at its own path, the
   sandbox's folder at its own path, ``/proc``, fresh ``/tmp``, ``/dev/shm`` and a
   ``/dev`` with only ``null``, ``zero``, ``full``, ``random``, ``urandom``;
   everything else (the grader's checkout, the checks, references, other
   students' work, home folders) simply does not exist in there;
4. with a PID namespace, forks its first process ("init", pid 1 there; see
   :func:`start_init`), which mounts a ``proc`` of the namespace on ``/proc``
   (so only the sandbox's own processes are seen) and forks the student's
   process; this process stays outside the namespace, running no student
   code, and ends with the student's process's exit status;
5. sets the resource limits (address space, CPU seconds, file size, open files,
   processes);
6. drops to the sandbox's own unprivileged uid and gid (root only), with no
   supplementary groups and ``no_new_privs``;
7. writes what it achieved as one JSON line to ``STATUS_FD``, closes it, and
   ``execve``s the interpreter with the sandbox's boot script and environment (plus
   ``GRADER_PRIVATE_SHM=1`` when step 3 gave it a ``/dev/shm`` of its own).

Nothing of the student runs before the ``execve``; this file is never copied
into the sandbox.
"""

from __future__ import annotations

import ctypes
import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # not imported at run time: this program starts with every sandbox, and typing costs 5 ms
    from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
PRIVATE_SHM_ENV = "GRADER_PRIVATE_SHM"
"""Set for the student's interpreter when it has a private ``/dev/shm`` (the same name as ``grader_inside.boot``'s)."""
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
MNT_DETACH = 2
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "armv7l": 218, "i686": 217, "ppc64le": 203, "s390x": 217}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
DEVICES = ("null", "zero", "full", "random", "urandom")

_libc: Any = None


def libc() -> Any:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        libc().mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(text)


def join_cgroups(paths: list[str]) -> list[str]:
    joined = []
    for path in paths:
        try:
            _write(os.path.join(path, "cgroup.procs"), str(os.getpid()))
            joined.append(path)
        except OSError:
            continue
    return joined


def _attempts(want_net: bool, want_mount: bool, want_processes: bool) -> list[int]:
    """The namespace sets to try, most complete first.

    The PID namespace needs the mount namespace (its ``/proc`` is mounted
    there, never over the host's); the IPC namespace goes with it.
    """
    net = CLONE_NEWNET if want_net else 0
    mnt = CLONE_NEWNS if want_mount else 0
    processes = CLONE_NEWIPC | CLONE_NEWPID if want_processes and want_mount else 0
    attempts = []
    for flags in (net | mnt | processes, net | mnt, net, mnt):
        if flags and flags not in attempts:
            attempts.append(flags)
    return attempts


def enter_namespaces(root: bool, want_net: bool, want_mount: bool, want_processes: bool = True) -> dict[str, bool]:
    """Unshare the network, mount, IPC and PID namespaces (in a user namespace without root).

    Returns which ones this process is now in (the PID namespace: which its
    *next child* is in, see :func:`start_init`).
    """
    found = dict(network_namespace=False, mount_namespace=False, user_namespace=False, ipc_namespace=False,
                 pid_namespace=False)
    uid, gid = os.getuid(), os.getgid()
    user = 0 if root else CLONE_NEWUSER
    for flags in _attempts(want_net, want_mount, want_processes):
        if libc().unshare(ctypes.c_int(flags | user)) == 0:
            if user:
                try:
                    _write("/proc/self/setgroups", "deny")
                    _write("/proc/self/uid_map", f"{uid} {uid} 1")
                    _write("/proc/self/gid_map", f"{gid} {gid} 1")
                except OSError:
                    pass
            found.update(network_namespace=bool(flags & CLONE_NEWNET), mount_namespace=bool(flags & CLONE_NEWNS),
                         user_namespace=bool(user), ipc_namespace=bool(flags & CLONE_NEWIPC),
                         pid_namespace=bool(flags & CLONE_NEWPID))
            return found
    return found


def _mkdirs(path: str, mode: int = 0o755) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(path, mode)


def _statvfs_flags(path: str) -> int:
    flags = 0
    try:
        info = os.statvfs(path).f_flag
    except OSError:
        return flags
    for bit, ms in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC)):
        if info & bit:
            flags |= ms
    return flags


def bind(source: str, new_root: str, *, read_only: bool, target: str | None = None) -> None:
    """Show ``source`` at the same path (or ``target``) under ``new_root``."""
    dest = new_root + (target or source)
    if os.path.islink(source) and target is None:
        if not os.path.lexists(dest):
            _mkdirs(os.path.dirname(dest))
            os.symlink(os.readlink(source), dest)
        return
    if os.path.isdir(source):
        _mkdirs(dest)
    else:
        _mkdirs(os.path.dirname(dest))
        if not os.path.exists(dest):
            with open(dest, "w"):
                pass
    mount(source, dest, None, MS_BIND | MS_REC)
    if read_only:
        try:
            mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | _statvfs_flags(source))
        except OSError:
            pass


def build_root(cfg: dict[str, Any]) -> str:
    """Assemble the minimal file system under ``cfg['new_root']`` and return it."""
    new_root = cfg["new_root"]
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=16m,mode=0755")
    for path in SYSTEM_DIRS:
        if os.path.lexists(path):
            bind(path, new_root, read_only=True)
    for path in cfg["python_dirs"]:
        if os.path.isdir(path) and not any(path == d or path.startswith(d + "/") for d in SYSTEM_DIRS):
            bind(path, new_root, read_only=True)
    for path in cfg.get("hide", []):
        dest = new_root + path
        if os.path.isdir(dest):
            mount("tmpfs", dest, "tmpfs", MS_NOSUID | MS_NODEV | MS_RDONLY, "size=4k,mode=0755")
    _mkdirs(new_root + "/tmp", 0o1777)
    mount("tmpfs", new_root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmp_size']},mode=1777")
    bind(cfg["base"], new_root, read_only=False)
    bind(cfg["support"], new_root, read_only=True)
    _mkdirs(new_root + "/proc")
    mount("/proc", new_root + "/proc", None, MS_BIND | MS_REC)
    dev = new_root + "/dev"
    _mkdirs(dev)
    try:
        mount("tmpfs", dev, "tmpfs", MS_NOSUID, "size=64k,mode=0755")
        for name in DEVICES:
            bind("/dev/" + name, new_root, read_only=False)
    except OSError:
        mount("/dev", dev, None, MS_BIND | MS_REC)
    _mkdirs(dev + "/shm", 0o1777)
    mount("tmpfs", dev + "/shm", "tmpfs", MS_NOSUID | MS_NODEV, f"size={cfg['tmp_size']},mode=1777")
    links = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}
    for name, target in links.items():
        if not os.path.lexists(f"{dev}/{name}"):
            os.symlink(target, f"{dev}/{name}")
    mount(None, new_root, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    return new_root


def enter_root(new_root: str) -> str:
    """Make ``new_root`` this mount namespace's root; the old root is detached, so no ``..`` leads back to it.

    ``pivot_root`` where the system call number is known, else ``chroot`` (the
    kernel refuses a new user namespace inside a ``chroot``, so an
    unprivileged process cannot gain the capability to break out of it).
    """
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None:
        os.chdir(new_root)
        if libc().syscall(ctypes.c_long(number), b".", b".") == 0:
            _check(libc().umount2(b".", MNT_DETACH), "detach the old root")
            os.chdir("/")
            return "pivot_root"
    os.chroot(new_root)
    os.chdir("/")
    return "chroot"


def set_limits(limits: dict[str, int]) -> list[str]:
    import resource

    table = {
        "memory": "RLIMIT_AS",
        "cpu_seconds": "RLIMIT_CPU",
        "file_size": "RLIMIT_FSIZE",
        "open_files": "RLIMIT_NOFILE",
        "processes": "RLIMIT_NPROC",
        "core": "RLIMIT_CORE",
    }
    applied = []
    for key, name in table.items():
        value = limits.get(key)
        which = getattr(resource, name, None)
        if value is None or which is None:
            continue
        try:
            _, hard = resource.getrlimit(which)
            value = int(value)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
            applied.append(key)
        except (ValueError, OSError):
            continue
    return applied


def mount_proc(private_root: bool) -> None:
    """Mount a ``proc`` of this process's PID namespace on ``/proc`` (init only: a ``proc`` shows its mounter's).

    It goes over the host's ``/proc`` (bound by :func:`build_root`): an
    unprivileged user namespace may mount a ``proc`` only where one is already
    fully visible. In a mount namespace without a private root, ``/`` is made
    private first, so the mount never reaches the host.
    """
    if not private_root:
        mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def start_init(done: dict[str, Any], status_fd: int) -> None:
    """Fork pid 1 of the new PID namespace; returns in the student's process only, init's first child.

    This process stays outside the namespace: it waits for init to report how
    the student's process ended and ends the same way (:func:`relay_end`), so
    the grader still waits for its own child and reads the student's exit
    status. Init mounts ``/proc``, forks the student's process and reaps the
    namespace's orphans (:func:`be_init`) until the grader kills it, after it
    has read the stacks of any process left over: when init ends, the kernel
    kills every process of its namespace.
    """
    read_end, write_end = os.pipe()
    init = os.fork()
    if init:
        os.close(write_end)
        os.close(status_fd)
        relay_end(init, read_end)
    os.close(read_end)
    try:
        mount_proc(bool(done["private_root"]))
    except OSError as exc:
        done["errors"].append(f"/proc of the PID namespace: {exc}")
        done["pid_namespace"] = False
    main = os.fork()
    if main == 0:
        os.close(write_end)
        return
    os.close(status_fd)
    be_init(main, write_end)


def relay_end(init: int, report: int) -> None:
    """Outside the namespace: wait for init's word on the student's process, then end exactly as it did.

    Every signal this process may ignore is ignored: a student's process can
    still reach it through the process group (``kill(0, ...)``).
    """
    import signal

    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                continue
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(report, 64)
        if not chunk:
            break
        data += chunk
    try:
        status = int(data)
    except ValueError:  # init ended without a word: end as it did
        _, status = os.waitpid(init, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(-code, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        os.kill(os.getpid(), -code)
        code = 128 - code
    os._exit(code)


def be_init(main: int, report: int) -> None:
    """Pid 1 of the namespace: reap every process that ends, report the student's process's wait status.

    As pid 1, it gets no signal from inside the namespace that it has no
    handler for (``SIGKILL`` included); Python's ``SIGINT`` handler is taken
    away so none is left. It ends once no process is left in the namespace.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        if pid == main:
            os.write(report, f"{status}\n".encode("ascii"))
            os.close(report)


def contain(cfg: dict[str, Any], done: dict[str, Any], status_fd: int) -> None:
    """Steps 1 to 4: cgroups, namespaces, the private root, and with a PID namespace its init."""
    root = os.geteuid() == 0
    done["cgroups"] = join_cgroups(cfg.get("cgroups", []))
    names = dict(network_namespace=False, mount_namespace=False, user_namespace=False, ipc_namespace=False,
                 pid_namespace=False)
    if sys.platform.startswith("linux"):
        try:
            names = enter_namespaces(root, cfg.get("network_namespace", True), cfg.get("mount_namespace", True),
                                     cfg.get("process_namespaces", True))
        except (OSError, AttributeError) as exc:
            done["errors"].append(f"namespaces: {exc}")
    done.update(names)
    done["private_root"] = False
    if names["mount_namespace"]:
        try:
            done["private_root"] = enter_root(build_root(cfg))
        except OSError as exc:
            done["errors"].append(f"private file system: {exc}")
    if names["pid_namespace"]:
        try:
            start_init(done, status_fd)
        except OSError as exc:  # no init: the student's process stays in the grader's PID namespace
            done["errors"].append(f"PID namespace: {exc}")
            done["pid_namespace"] = False
    done["main_pid"] = os.getpid()


def json_text(value: Any) -> str:
    """``value`` (str, int, bool, None, lists and dicts of them) as ASCII JSON, without the ``json`` module.

    ``json`` imports ``re`` and ``enum``: 10 ms of CPU in every sandbox's first program, for one line
    of status. Strings are escaped as ``json.dumps`` does with ``ensure_ascii`` (lone surrogates too).
    """
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(json_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(_json_string(str(k)) + ":" + json_text(v) for k, v in value.items()) + "}"
    raise TypeError(f"not plain data: {type(value).__name__}")


_JSON_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _JSON_ESCAPES:
            out.append(_JSON_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}")
        else:
            out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def prepare(config_path: str, status_fd: int, *, served: bool = False) -> tuple[list[str], dict[str, str]]:
    """Steps 1 to 7 but the ``execve``: returns the student's interpreter's ``argv`` and environment.

    Returns in the process that is to run the student's code only (with a PID namespace, init's
    first child). ``served``: this process is a fork of :mod:`grader.sandbox.fork_server` that becomes
    the interpreter without an ``execve``; dropping to the sandbox's uid makes a process not
    dumpable until it ``execve``s, so it is made dumpable again, as the ``execve`` would have.
    """
    with open(config_path, "rb") as handle:  # written by the sandbox (mode 0600, root's when root): trusted
        cfg = marshal.load(handle)
    done: dict[str, Any] = {"errors": []}
    root = os.geteuid() == 0
    contain(cfg, done, status_fd)
    os.chdir(cfg["work"])
    uid, gid = cfg.get("uid"), cfg.get("gid")
    limits = dict(cfg.get("limits", {}))
    if done["pid_namespace"] and not (root and uid is not None) and limits.get("processes") is not None:
        limits["processes"] = int(limits["processes"]) + 2  # this process and init are tasks of the user too
    done["limits"] = set_limits(limits)
    done["uid"] = None
    if root and uid is not None and cfg.get("uid_needs_private_root") and not done["private_root"]:
        done["errors"].append("the Python installation is not reachable by other users: the run keeps root's uid")
        done["refused"] = bool(cfg.get("fail_closed"))  # fail closed: the student's code is not started
    elif root and uid is not None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
        done["uid"] = uid
    try:
        done["no_new_privs"] = libc().prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
        if served:
            libc().prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    except (OSError, AttributeError):
        done["no_new_privs"] = False
    os.umask(0o077)
    import signal

    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the grader may hold SIGALRM back while it waits
    try:
        os.write(status_fd, (json_text(done) + "\n").encode("ascii"))
    finally:
        os.close(status_fd)
    if done.get("refused"):
        os._exit(71)
    argv, env = list(cfg["argv"]), dict(cfg["env"])
    if done["private_root"]:
        env[PRIVATE_SHM_ENV] = "1"  # named semaphores end with the mount namespace: no resource tracker needed
    return argv, env


def main() -> None:
    argv, env = prepare(sys.argv[1], int(sys.argv[2]))
    os.execve(argv[0], argv, env)


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # the sandbox reports a run that never started
        sys.stderr.write(f"grader sandbox could not start: {type(exc).__name__}: {exc}\n")
        os._exit(70)
