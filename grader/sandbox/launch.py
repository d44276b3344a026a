"""First program of a sandbox: contain this process, then become the student's Python.

Trusted side, standard library only. The sandbox starts it as
``python -I -S launch.py CONFIG STATUS_FD`` in a new session; it reads its
configuration (a JSON file only root can read when running as root), then, in
this order, with each step best-effort where the platform allows it:

1. joins the sandbox's cgroups (``pids`` and ``memory``, cgroup v1), so the
   whole tree is counted and capped together and found by the grader;
2. ``unshare``s a network namespace (no interface but a loopback that is
   down: every connection fails) and a mount namespace; without root, inside
   a new user namespace that maps only the current uid;
3. builds a minimal root file system in the mount namespace and ``chroot``s
   into it: the system's ``/usr``, ``/lib*``, ``/bin``, ``/etc`` and ``/sys``
   read-only, the Python installation read-only at its own path, the
   sandbox's folder at its own path, fresh ``/tmp``, ``/dev/shm`` and a
   ``/dev`` with only ``null``, ``zero``, ``full``, ``random``, ``urandom``;
   everything else (the grader's checkout, the checks, references, other
   students' work, home folders) simply does not exist in there;
4. sets the resource limits (address space, CPU seconds, file size, open files,
   processes);
5. drops to the sandbox's own unprivileged uid and gid (root only), with no
   supplementary groups and ``no_new_privs``;
6. writes what it achieved as one JSON line to ``STATUS_FD``, closes it, and
   ``execve``s the interpreter with the sandbox's boot script and environment.

Nothing of the student runs before the ``execve``; this file is never copied
into the sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
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


def enter_namespaces(root: bool, want_net: bool, want_mount: bool) -> tuple[bool, bool, bool]:
    """Unshare the network and mount namespaces (in a user namespace without root)."""
    if not (want_net or want_mount):
        return False, False, False
    uid, gid = os.getuid(), os.getgid()
    user = 0 if root else CLONE_NEWUSER
    attempts = []
    if want_net and want_mount:
        attempts.append(CLONE_NEWNET | CLONE_NEWNS)
    if want_net:
        attempts.append(CLONE_NEWNET)
    if want_mount:
        attempts.append(CLONE_NEWNS)
    for flags in attempts:
        if libc().unshare(ctypes.c_int(flags | user)) == 0:
            if user:
                try:
                    _write("/proc/self/setgroups", "deny")
                    _write("/proc/self/uid_map", f"{uid} {uid} 1")
                    _write("/proc/self/gid_map", f"{gid} {gid} 1")
                except OSError:
                    pass
            return bool(flags & CLONE_NEWNET), bool(flags & CLONE_NEWNS), bool(user)
    return False, False, False


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
    import platform

    number = SYS_PIVOT_ROOT.get(platform.machine())
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


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        cfg = json.load(handle)
    status_fd = int(sys.argv[2])
    done: dict[str, Any] = {"errors": []}
    root = os.geteuid() == 0
    done["cgroups"] = join_cgroups(cfg.get("cgroups", []))
    net, mnt, userns = False, False, False
    if sys.platform.startswith("linux"):
        try:
            net, mnt, userns = enter_namespaces(root, cfg.get("network_namespace", True), cfg.get("mount_namespace", True))
        except (OSError, AttributeError) as exc:
            done["errors"].append(f"namespaces: {exc}")
    done.update(network_namespace=net, mount_namespace=mnt, user_namespace=userns)
    done["private_root"] = False
    if mnt:
        try:
            done["private_root"] = enter_root(build_root(cfg))
        except OSError as exc:
            done["errors"].append(f"private file system: {exc}")
    os.chdir(cfg["work"])
    done["limits"] = set_limits(cfg.get("limits", {}))
    uid, gid = cfg.get("uid"), cfg.get("gid")
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
    except (OSError, AttributeError):
        done["no_new_privs"] = False
    os.umask(0o077)
    import signal

    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # the grader may hold SIGALRM back while it waits
    try:
        os.write(status_fd, (json.dumps(done) + "\n").encode("utf-8"))
    finally:
        os.close(status_fd)
    if done.get("refused"):
        os._exit(71)
    argv = cfg["argv"]
    os.execve(argv[0], argv, cfg["env"])


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # the sandbox reports a run that never started
        sys.stderr.write(f"grader sandbox could not start: {type(exc).__name__}: {exc}\n")
        os._exit(70)
