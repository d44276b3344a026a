"""What contains a sandbox: resource limits, its own uid, cgroups, a ``tmpfs``, and the words for the report.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
It owns:

- :class:`Limits` and :class:`Isolation`, what a sandbox caps and which containment it tries;
- the uid leases (:func:`lease_uid`, :class:`UidLease`): an unprivileged uid per sandbox, root
  only, with :func:`kill_user` and :func:`sweep_stale` to clean what a dead grader left under it;
  :class:`grader.uid_locks.LeaseRefused` when none can be leased (fail closed);
- :class:`Cgroups`, the cgroups that count and cap the whole tree (root only);
- :func:`mount_tmpfs` and :func:`unmount` for the sandbox's size-limited folder;
- :func:`list_protections`: which protections a run had, in words for the report.

The steps inside the sandbox (namespaces, ``chroot``, ``setrlimit``, dropping to the uid) are
:mod:`grader.sandbox.launch`'s.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from grader.processes import read_proc, status_line
from grader.uid_locks import UID_BASE, UID_COUNT, lock_free_uid
from grader.uid_locks import UID_LOCK_DIR as UID_LOCK_DIR
from grader.uid_locks import LeaseRefused as LeaseRefused
from grader.uid_locks import uid_lock_dir as uid_lock_dir

CGROUP_ROOT = Path("/sys/fs/cgroup")
HELPER_TASKS = 2  # with a PID namespace: the launcher, which stays outside, and the namespace's init


@dataclass(frozen=True)
class Limits:
    """Resource limits of a sandbox (``None``: no limit).

    ``memory`` (address space), ``cpu_seconds``, ``file_size`` and
    ``open_files`` apply to every process (``setrlimit``, inherited by
    children). ``processes`` caps the tasks (processes and threads) of the
    sandbox: ``RLIMIT_NPROC`` of its own uid as root (without root, the
    current count of the user's tasks plus this many) and ``pids.max`` of its
    cgroup. ``tree_memory`` caps the memory of the whole tree together and
    ``cpus`` the processors it may keep busy at once (cgroups, root only; by
    default all but one, so a busy submission never starves the others). ``disk`` is the size of the sandbox's folder,
    ``/tmp`` and ``/dev/shm`` (``tmpfs``, root only).
    """

    memory: int | None = 1024 * 1024 * 1024
    cpu_seconds: int | None = 120
    file_size: int | None = 64 * 1024 * 1024
    open_files: int | None = 256
    processes: int | None = 128
    tree_memory: int | None = 2 * 1024 * 1024 * 1024
    disk: int | None = 256 * 1024 * 1024
    cpus: float | None = field(default_factory=lambda: float(max(1, (os.cpu_count() or 2) - 1)))


@dataclass(frozen=True)
class Isolation:
    """Which containment a sandbox tries (each is used only where the platform allows it).

    ``processes``: its own PID and IPC namespaces (with ``filesystem`` only,
    which shows the namespace's ``/proc``).
    """

    network: bool = True
    filesystem: bool = True
    separate_user: bool = True
    cgroups: bool = True
    processes: bool = True
    fail_closed: bool = True
    """As root, refuse to run student code (:class:`SandboxRefused`) when it would keep root's uid;
    ``False`` only with ``--unsafe-no-sandbox``, and then every report says so."""
    audit_hook: bool = True
    """The audit hook (:mod:`grader.inside.guard`) that refuses and records the student's reaching for
    the evidence, the probes, frames, ``gc`` and ``ctypes``; ``False`` only for tests of the other
    walls, whose code does on purpose what the hook refuses."""


class SandboxRefused(RuntimeError):
    """The sandbox refused to run student code: as root, it could not drop to a uid of its own."""


def is_root() -> bool:
    """Whether this process may contain a sandbox fully (root, on Linux)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


class UidLease:
    """An unprivileged uid and gid held by one sandbox (an exclusive ``flock`` on its lock file)."""

    def __init__(self, uid: int, fd: int) -> None:
        self.uid = uid
        self.gid = uid
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _uids_from_proc(uid: int) -> list[psutil.Process] | None:
    """:func:`owned_by` from the ``Uid:`` line of each ``/proc/PID/status`` (``None``: no such files here).

    A few microseconds a process, where psutil's records take a millisecond or more on a loaded
    machine with a thousand processes, and this runs several times after every run that hangs.
    """
    if not os.path.isfile("/proc/self/status"):
        return None
    wanted, found = str(uid).encode(), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        data = read_proc(f"/proc/{name}/status", 4096)
        if data is None:
            continue
        if wanted in status_line(data, b"Uid:").split()[1:4]:  # real, effective, saved
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(int(name)))
    return found


def owned_by(uid: int) -> list[psutil.Process]:
    """Every process whose real, effective or saved uid is ``uid``."""
    fast = _uids_from_proc(uid)
    if fast is not None:
        return fast
    found = []
    for proc in psutil.process_iter(["uids"]):
        try:
            uids = proc.info["uids"]
        except (psutil.Error, KeyError):
            continue
        if uids is not None and uid in (uids.real, uids.effective, uids.saved):
            found.append(proc)
    return found


def kill_user(uid: int) -> int:
    """SIGKILL every process of ``uid`` (a sandbox uid: no one else uses it); returns how many."""
    procs = owned_by(uid)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return len(procs)


def lease_uid(base: int = UID_BASE, count: int = UID_COUNT, lock_dir: Path | None = None) -> UidLease | None:
    """Lease a uid no one else uses (root only; ``None`` otherwise): not in the user database, not held by another sandbox.

    Leases are ``flock`` locks on files in ``lock_dir`` (default :func:`grader.uid_locks.uid_lock_dir`),
    so concurrent graders on the machine (any number of processes) never share a uid; a lock is
    released by the kernel when its holder dies. Processes a dead grader left running under the
    uid are killed before it is handed out again. As root, raises
    :class:`grader.uid_locks.LeaseRefused` when ``lock_dir`` is not a folder of root's that no one
    else may enter (checked on the open descriptor: a link is not followed) or when every uid is
    taken: the caller fails closed rather than run student code as root.
    """
    if not is_root():
        return None
    uid, fd = lock_free_uid(base, count, lock_dir)
    sweep_stale(uid)
    return UidLease(uid, fd)


def sweep_stale(uid: int) -> None:
    """Clean what a grader that died while holding ``uid`` left: its processes, mounts and cgroups.

    Sandbox folders and cgroups of a uid are named ``grader-sandbox-<uid>-...``;
    whoever holds the uid's lease is the only one who may use them.
    """
    for _ in range(20):
        if not kill_user(uid):
            break
        time.sleep(0.02)
    prefix = f"grader-sandbox-{uid}-"
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except (OSError, IndexError):
        mounts = []
    for point in mounts:
        if os.path.basename(point).startswith(prefix):
            unmount(Path(point))
            shutil.rmtree(point, ignore_errors=True)
    parents = [CGROUP_ROOT / c / Cgroups._own(c).lstrip("/") for c in ("pids", "memory", "cpu")] + [CGROUP_ROOT]
    for parent in parents:
        for path in parent.glob(prefix + "*"):
            with contextlib.suppress(OSError):
                path.rmdir()


def user_tasks(uid: int) -> int:
    """How many tasks (threads of all processes) the real uid ``uid`` has now (what RLIMIT_NPROC counts)."""
    total = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        try:
            if proc.info["uids"] is not None and proc.info["uids"].real == uid:
                total += proc.info["num_threads"] or 1
        except (psutil.Error, KeyError):
            continue
    return total


class Cgroups:
    """The sandbox's own cgroups (``pids`` and ``memory``, root only).

    cgroup v1: one per controller, children of this process's own. cgroup v2
    (unified): one child of the hierarchy's root where that root delegates
    both controllers (a systemd host); elsewhere (a v2 container whose root
    holds processes) none. ``helpers``: tasks of the grader's in the tree
    (:data:`HELPER_TASKS`), allowed on top of ``limits.processes``.
    """

    def __init__(self, name: str, limits: Limits, helpers: int = 0) -> None:
        self.paths: list[Path] = []
        self.kinds: list[str] = []
        self.v2 = False
        if not is_root():
            return
        if (CGROUP_ROOT / "cgroup.controllers").is_file():
            self._make_v2(name, limits, helpers)
            return
        quota = int(limits.cpus * 100_000) if limits.cpus else None
        for controller, settings in (
            ("pids", {"pids.max": None if limits.processes is None else limits.processes + helpers}),
            ("cpu", {"cpu.cfs_period_us": 100_000 if quota else None, "cpu.cfs_quota_us": quota}),
            ("memory", {"memory.limit_in_bytes": limits.tree_memory, "memory.memsw.limit_in_bytes": limits.tree_memory}),
        ):
            mount = CGROUP_ROOT / controller
            if not (mount / "cgroup.procs").is_file():
                continue
            parent = mount / self._own(controller).lstrip("/")
            path = parent / name
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                for key, value in settings.items():
                    if value is not None:
                        try:
                            (path / key).write_text(str(value))
                        except OSError:
                            if key == "memory.memsw.limit_in_bytes":
                                continue
                            raise
                if controller == "memory":
                    with contextlib.suppress(OSError):
                        (path / "memory.oom_control").write_text("0")
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
                continue
            self.paths.append(path)
            self.kinds.append(controller)

    def _make_v2(self, name: str, limits: Limits, helpers: int = 0) -> None:
        try:
            enabled = (CGROUP_ROOT / "cgroup.subtree_control").read_text().split()
        except OSError:
            return
        wanted = [c for c in ("pids", "memory", "cpu") if c in enabled]
        if not wanted:
            return
        path = CGROUP_ROOT / name
        try:
            path.mkdir()
        except OSError:
            return
        settings = {"pids.max": limits.processes + helpers if "pids" in wanted and limits.processes is not None else None}
        if "memory" in wanted:
            settings.update({"memory.max": limits.tree_memory, "memory.swap.max": 0 if limits.tree_memory else None})
        if "cpu" in wanted and limits.cpus:
            settings["cpu.max"] = f"{int(limits.cpus * 100_000)} 100000"  # type: ignore[assignment]
        for key, value in settings.items():
            if value is not None:
                with contextlib.suppress(OSError):
                    (path / key).write_text(str(value))
        self.paths.append(path)
        self.kinds.extend(wanted)
        self.v2 = True

    @staticmethod
    def _own(controller: str) -> str:
        try:
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, names, path = line.split(":", 2)
                if controller in names.split(","):
                    return path
        except (OSError, ValueError):
            pass
        return "/"

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.paths:
            try:
                found.update(int(p) for p in (path / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                continue
        return found

    def peak_memory(self) -> int | None:
        """The most memory the tree used at once (bytes), where a memory cgroup counted it."""
        for kind, path in zip(self.kinds, self.paths * len(self.kinds) if self.v2 else self.paths):
            if kind == "memory":
                try:
                    return int((path / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")).read_text())
                except (OSError, ValueError):
                    return None
        return None

    def remove(self) -> None:
        for path in self.paths:
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    for pid in self.pids():
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    time.sleep(0.01)


def mount_tmpfs(path: Path, size: int) -> bool:
    """Mount a size-limited ``tmpfs`` on ``path`` (root only); False where that is not possible."""
    if not is_root():
        return False
    from grader.sandbox.launch import MS_NODEV, MS_NOSUID, mount

    try:
        mount("tmpfs", str(path), "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=0711")
    except (OSError, AttributeError):
        return False
    return True


def unmount(path: Path) -> None:
    """Detach whatever is mounted on ``path`` (lazily: it goes once no one uses it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(path).encode(), 2)  # MNT_DETACH


def world_reachable(path: str) -> bool:
    """Whether a user without privileges can reach ``path`` (every folder above it searchable)."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            if not os.stat(current).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
        parent = os.path.dirname(current)
        if parent == current:
            return True
        current = parent


def _size(count: int) -> str:
    """A byte count in words: ``"2 GiB"`` where it is a whole number of a unit, else ``"1000 bytes"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


NOT_ISOLATED = (
    "NOT ISOLATED from other submissions graded at the same time by this user (no uid of its own, no PID "
    "namespace: it can see and signal their processes); grade as root or where user namespaces are enabled"
)


def list_protections(
    status: dict[str, Any] | None, limits: Limits, cgroups: Cgroups | None, subreaper: bool, on_tmpfs: bool
) -> list[str]:
    """What contained a run, in words for the report (the same for every run of a machine).

    ``status`` is what :mod:`grader.sandbox.launch` reported it achieved (``None``: nothing);
    ``cgroups`` the sandbox's own, ``subreaper`` whether this process is a child subreaper and
    ``on_tmpfs`` whether the sandbox's folder is a size-limited ``tmpfs``.
    """
    found = ["own session and process group"]
    if subreaper:
        found.append("child subreaper (escaped daemons are killed)")
    status = status or {}
    if status.get("uid") is not None:
        found.append("own unprivileged uid per sandbox (cannot signal the grader or write its files)")
    if status.get("pid_namespace"):
        found.append("own PID namespace (sees and signals only its own processes)")
    elif status.get("uid") is None:
        found.insert(0, NOT_ISOLATED)
    if status.get("ipc_namespace"):
        found.append("own IPC namespace (System V IPC dies with the run)")
    if status.get("network_namespace"):
        found.append("no network (network namespace)")
    if status.get("private_root"):
        found.append("private file system view (no checks, references, grader files or other submissions)")
    caps = _cgroup_caps(_joined_kinds(status, cgroups), limits)
    if caps:
        found.append(f"cgroup: {caps} for the whole tree")
    if on_tmpfs:
        found.append(f"private temporary folder ({_size(limits.disk or 0)} tmpfs), deleted afterwards")
    else:
        found.append("private temporary folder, deleted afterwards")
    found.append("scrubbed environment")
    applied = _applied_limits(status, limits)
    if applied:
        found.append("per-process limits: " + ", ".join(applied))
    if status.get("no_new_privs"):
        found.append("no_new_privs")
    found.append("output capped and safely decoded")
    return found


def _joined_kinds(status: dict[str, Any], cgroups: Cgroups | None) -> set[str]:
    """The controllers (``pids``, ``memory``, ``cpu``) of the cgroups the launcher said it joined."""
    joined = set(status.get("cgroups") or [])
    kinds = set()
    if cgroups is not None:
        for index, kind in enumerate(cgroups.kinds):
            if str(cgroups.paths[0 if cgroups.v2 else index]) in joined:
                kinds.add(kind)
    return kinds


def _cgroup_caps(kinds: set[str], limits: Limits) -> str:
    """What the joined cgroups cap, in words (``"128 tasks, 2 GiB of memory and 1 CPU"``); empty if nothing."""
    caps = []
    if "pids" in kinds and limits.processes:
        caps.append(f"{limits.processes} tasks")
    if "memory" in kinds and limits.tree_memory:
        caps.append(f"{_size(limits.tree_memory)} of memory")
    if "cpu" in kinds and limits.cpus:
        caps.append(f"{limits.cpus:g} CPU")
    if not caps:
        return ""
    return caps[0] if len(caps) == 1 else ", ".join(caps[:-1]) + " and " + caps[-1]


def _applied_limits(status: dict[str, Any], limits: Limits) -> list[str]:
    """The per-process limits the launcher said it set, in words."""
    names = {
        "memory": f"{_size(limits.memory or 0)} address space",
        "cpu_seconds": f"{limits.cpu_seconds} s CPU",
        "file_size": f"{_size(limits.file_size or 0)} files",
        "open_files": f"{limits.open_files} open files",
        "processes": f"{limits.processes} tasks"
        if status.get("uid") is not None
        else f"{limits.processes} more tasks of the user",
    }
    return [names[k] for k in status.get("limits", []) if k in names]
