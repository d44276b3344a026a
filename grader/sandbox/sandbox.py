"""Run student code in a fresh, contained process tree and read back plain data.

This is the trusted side of the sandbox. Each :meth:`Sandbox.run` call:

1. makes a private temporary folder (as root: a size-limited ``tmpfs``) with a
   copy of the submission (``work/``), the in-sandbox support code
   (``support/``: ``grader_boot.py`` and the ``grader_inside`` package), a
   private ``tmp/`` and an output folder (``out/``); as root it also leases an
   unprivileged uid of its own (:func:`lease_uid`) and makes cgroups that
   count and cap the whole tree;
2. starts ``python grader_boot.py`` through :mod:`grader.sandbox.launch` (which joins
   the cgroups, unshares the network and mount namespaces, shows the student a
   minimal file system, sets the resource limits and drops to the leased uid)
   in a new session and process group, with a scrubbed environment, stdout
   and stderr going to files (never pipes: an orphaned grandchild could hold
   a pipe open forever);
3. waits for it with a deadline; on timeout, or when processes outlive the main
   one, reads where every process of the tree is (py-spy, else ``SIGUSR1`` ->
   ``faulthandler``; see :mod:`grader.sandbox.stacks`) before killing anything;
4. kills every process the student's code left behind, including ones that
   escaped with ``setsid`` and a double fork (this process is a Linux child
   subreaper, so orphans are re-parented to it and found), and reaps them;
5. reads ``result.json``, ``evidence.jsonl``, stdout and stderr back as plain
   data (nothing is unpickled; no link or special file is followed), capped in
   size, and deletes the folder.

Which of these protections the platform allowed is recorded in
:attr:`RawRun.protections` for the report; ``docs/security.md`` has the
threat model.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import py_compile
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from grader.inside import wire
from grader.processes import become_subreaper, wait_any, wait_process
from grader.sandbox.stacks import ProcessStack
from grader.sandbox.stacks import collect as collect_stacks

GRADER_DIR = Path(__file__).resolve().parent.parent
INSIDE_DIR = GRADER_DIR / "inside"
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
UID_BASE = 60000
UID_COUNT = 2000
# machine-wide (never under $TMPDIR, which differs between graders): /run is root's
UID_LOCK_DIR = Path("/run/grader-sandbox-uids" if os.access("/run", os.W_OK) else "/tmp/grader-sandbox-uids")
CGROUP_ROOT = Path("/sys/fs/cgroup")
STDOUT_HEAD = 48 * 1024
STDOUT_TAIL = 16 * 1024
EVIDENCE_BYTES = 64 * 1024 * 1024
EVIDENCE_EVENTS = 400_000
RESULT_BYTES = 256 * 1024 * 1024
KILL_GRACE = 0.2
STACK_PROCESSES = 16
SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}
MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_SUBMISSION_FILES = 2000


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

    def as_dict(self) -> dict[str, float | None]:
        return {
            "memory": self.memory,
            "cpu_seconds": self.cpu_seconds,
            "file_size": self.file_size,
            "open_files": self.open_files,
            "processes": self.processes,
            "tree_memory": self.tree_memory,
            "disk": self.disk,
            "cpus": self.cpus,
        }


@dataclass(frozen=True)
class Isolation:
    """Which containment a sandbox tries (each is used only where the platform allows it)."""

    network: bool = True
    filesystem: bool = True
    separate_user: bool = True
    cgroups: bool = True


@dataclass
class RawRun:
    """Everything one sandbox run produced, as plain data."""

    result: dict[str, Any] | None
    events: list[dict[str, Any]]
    stdout: str
    stderr: str
    timed_out: bool
    exit_status: int | None
    duration: float
    main_pid: int
    leftovers: list[dict[str, Any]] = field(default_factory=list)
    stacks: dict[int, ProcessStack] = field(default_factory=dict)
    protections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)




_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\t":
        return ch
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF or ch in _BIDI:
        return f"\\u{code:04x}"
    return ch


def safe_text(text: str) -> str:
    """Text from the sandbox made safe to show anywhere: control characters (terminal escapes,
    carriage returns, NUL), lone surrogates and bidirectional overrides shown escaped."""
    if text.isprintable():
        return text
    return "".join(map(_shown, text))


def clean_text(data: bytes) -> str:
    """Decode captured output safely: bad UTF-8 replaced, control characters shown escaped."""
    return safe_text(data.decode("utf-8", "replace"))


def open_plain(path: Path) -> Any:
    """Open a file the sandbox wrote for reading, refusing links, FIFOs and devices.

    The output folder belongs to the student's uid: whatever is there may have
    been replaced by a symbolic link to a file of the grader or by a FIFO that
    would block a reader forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a plain file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: Path, head: int = STDOUT_HEAD, tail: int = STDOUT_TAIL) -> str:
    """Read a captured stream, keeping its head and tail and saying how much was cut."""
    try:
        with open_plain(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= head + tail:
                return clean_text(handle.read())
            first = handle.read(head)
            handle.seek(size - tail)
            last = handle.read(tail)
    except OSError:
        return ""
    cut = size - head - tail
    return f"{clean_text(first)}\n[... {cut} bytes of output cut ...]\n{clean_text(last)}"


def copy_submission(source: Path, dest: Path, module_file: str | None = None) -> None:
    """Copy a submission (a folder, or one ``.py`` file saved as ``module_file``) without links."""
    dest.mkdir(parents=True, exist_ok=True)
    if source.is_file():
        shutil.copyfile(source, dest / (module_file or source.name))
        return
    total = 0
    count = 0
    for root, dirs, files in os.walk(source, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not os.path.islink(os.path.join(root, d)))
        rel = Path(root).relative_to(source)
        for name in sorted(files):
            src = Path(root) / name
            if src.is_symlink() or not src.is_file():
                continue
            size = src.stat().st_size
            total += size
            count += 1
            if total > MAX_SUBMISSION_BYTES or count > MAX_SUBMISSION_FILES:
                raise SubmissionTooLarge(
                    f"the submission holds more than {MAX_SUBMISSION_FILES} files or "
                    f"{MAX_SUBMISSION_BYTES // (1024 * 1024)} MiB"
                )
            target = dest / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)


# -- platform support ---------------------------------------------------------------


class _HeldAlarm:
    """Holds ``SIGALRM`` back while a run is under way, and delivers it afterwards.

    The signal is blocked in this thread and, because a process-directed signal
    goes to any thread that does not block it (pytest-xdist workers have I/O
    threads), the Python-level handler is also swapped for one that only notes
    the signal; the original handler is called once the run is over.
    """

    def __init__(self) -> None:
        self.mask: set[Any] | None = None
        self.handler: Any = None
        self.pending: list[Any] = []

    def __enter__(self) -> _HeldAlarm:
        if not hasattr(signal, "SIGALRM"):
            return self
        if hasattr(signal, "pthread_sigmask"):
            try:
                self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            except (OSError, ValueError):
                self.mask = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGALRM)
            if callable(previous):
                self.handler = previous
                signal.signal(signal.SIGALRM, lambda signum, frame: self.pending.append(frame))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handler is not None:
            signal.signal(signal.SIGALRM, self.handler)
        if self.mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)  # a blocked alarm is delivered here
        if self.pending and self.handler is not None:
            self.handler(signal.SIGALRM, self.pending[0])


def is_root() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


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


def _owned_by(uid: int) -> list[psutil.Process]:
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
    procs = _owned_by(uid)
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return len(procs)


def lease_uid(base: int = UID_BASE, count: int = UID_COUNT, lock_dir: Path = UID_LOCK_DIR) -> UidLease | None:
    """Lease a uid no one else uses (root only): not in the user database, not held by another sandbox.

    Leases are ``flock`` locks on files in ``lock_dir``, so concurrent graders
    on the machine (any number of processes) never share a uid; a lock is
    released by the kernel when its holder dies. Processes a dead grader left
    running under the uid are killed before it is handed out again.
    """
    if not is_root():
        return None
    import fcntl
    import grp
    import pwd

    try:
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        info = os.lstat(lock_dir)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            return None
        os.chmod(lock_dir, 0o700)
    except OSError:
        return None
    start = random.randrange(count)
    for i in range(count):
        uid = base + (start + i) % count
        try:
            pwd.getpwuid(uid)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(uid)
            continue
        except KeyError:
            pass
        try:
            fd = os.open(lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        sweep_stale(uid)
        return UidLease(uid, fd)
    return None


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


def _user_tasks(uid: int) -> int:
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
    holds processes) none.
    """

    def __init__(self, name: str, limits: Limits) -> None:
        self.paths: list[Path] = []
        self.kinds: list[str] = []
        self.v2 = False
        if not is_root():
            return
        if (CGROUP_ROOT / "cgroup.controllers").is_file():
            self._make_v2(name, limits)
            return
        quota = int(limits.cpus * 100_000) if limits.cpus else None
        for controller, settings in (
            ("pids", {"pids.max": limits.processes}),
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

    def _make_v2(self, name: str, limits: Limits) -> None:
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
        settings = {"pids.max": limits.processes if "pids" in wanted else None}
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
    libc = ctypes.CDLL(None, use_errno=True)
    libc.umount2(str(path).encode(), 2)  # MNT_DETACH


def _world_reachable(path: str) -> bool:
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


class SubmissionTooLarge(ValueError):
    """The submission folder is too big to copy into a sandbox."""


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale and count % scale == 0:
            return f"{count // scale} {unit}"
    return f"{count} bytes"


def _is_tracker(proc: psutil.Process) -> bool:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return False
    return "multiprocessing.resource_tracker" in cmd or "multiprocessing.forkserver" in cmd


def _ending(proc: psutil.Process, grace: float = 0.5) -> bool:
    """Whether ``proc`` is in the middle of exiting: an empty command line (its memory is already
    released), and gone within ``grace`` seconds. A process still running code always has one."""
    try:
        if proc.cmdline():
            return False
    except psutil.ZombieProcess:
        return True
    except (psutil.Error, OSError):
        return True
    try:
        proc.wait(timeout=grace)
    except psutil.TimeoutExpired:
        return False
    except (psutil.Error, OSError, ChildProcessError):
        pass
    return True


def _describe(proc: psutil.Process) -> dict[str, Any]:
    info: dict[str, Any] = {"pid": proc.pid}
    try:
        with proc.oneshot():
            info["name"] = proc.name()
            info["cmdline"] = " ".join(proc.cmdline())[:300]
            info["status"] = proc.status()
            info["ppid"] = proc.ppid()
    except (psutil.Error, OSError):
        pass
    return info


_BYTECODE: dict[str, bytes] | None = None
_BYTECODE_LOCK = threading.Lock()


def _inside_bytecode() -> dict[str, bytes]:
    """``grader.inside`` compiled once per process: file name in ``__pycache__`` -> ``.pyc`` bytes.

    Every interpreter of a sandbox (its first process and each ``spawn``
    child) imports these modules, and the sandbox runs with
    ``PYTHONDONTWRITEBYTECODE``: without bytecode beside them each one would
    compile them again. Hash-checked ``.pyc`` files (PEP 552) stay valid
    whatever the copies' modification times, and a changed source is
    recompiled rather than trusted. Empty where compiling is not possible.
    """
    global _BYTECODE
    with _BYTECODE_LOCK:
        if _BYTECODE is None:
            found: dict[str, bytes] = {}
            tag = sys.implementation.cache_tag
            if tag is not None:
                with tempfile.TemporaryDirectory(prefix="grader-pyc-") as tmp:
                    for source in sorted(INSIDE_DIR.glob("*.py")):
                        if source.name == "boot.py":
                            continue
                        target = Path(tmp) / f"{source.stem}.{tag}.pyc"
                        try:
                            py_compile.compile(
                                str(source),
                                cfile=str(target),
                                doraise=True,
                                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                            )
                            found[target.name] = target.read_bytes()
                        except (OSError, py_compile.PyCompileError):
                            continue
            _BYTECODE = found
        return _BYTECODE


def _copy_bytecode(package: Path) -> None:
    """Put the compiled ``grader.inside`` beside its copy in a sandbox (the same Python reads it)."""
    compiled = _inside_bytecode()
    if not compiled:
        return
    cache = package / "__pycache__"
    cache.mkdir(exist_ok=True)
    for name, data in compiled.items():
        (cache / name).write_bytes(data)


class Sandbox:
    """Runs actions on one submission, each in a fresh contained process tree."""

    def __init__(
        self,
        source: Path,
        module: str,
        *,
        module_file: str | None = None,
        start_method: str | None = None,
        limits: Limits | None = None,
        support_modules: dict[str, Path] | None = None,
        isolation: Isolation | None = None,
        hide: list[Path] | tuple[Path, ...] = (),
    ) -> None:
        self.source = Path(source)
        self.module = module
        self.module_file = module_file or f"{module}.py"
        self.start_method = start_method
        self.limits = limits or Limits()
        self.isolation = isolation or Isolation()
        self.support_modules = dict(support_modules or {})
        self.hide = [Path(p) for p in hide]
        self._uid: int | None = None
        self._cgroups: Cgroups | None = None
        self.last_protections: list[str] = []

    def run(
        self,
        action: dict[str, Any],
        *,
        timeout: float,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
    ) -> RawRun:
        """Run one action (``{"kind": "import"}``, ``call`` or ``driver``) and return what happened.

        ``SIGALRM`` (pytest-timeout's alarm) is held back while the run is under
        way and delivered when it returns: the run has its own deadline, and a
        check timing out must not cut the kill and clean-up of the tree short.
        """
        with _HeldAlarm():
            raw = self._run_held(action, timeout, trace, probes)
            self.last_protections = list(raw.protections)  # kept should the alarm end the check now
            return raw

    def _run_held(
        self,
        action: dict[str, Any],
        timeout: float,
        trace: list[str] | tuple[str, ...],
        probes: list[str] | tuple[str, ...],
    ) -> RawRun:
        subreaper = become_subreaper()
        lease = lease_uid() if self.isolation.separate_user else None
        base: Path | None = None
        on_tmpfs = False
        cgroups: Cgroups | None = None
        try:
            base = Path(tempfile.mkdtemp(prefix=f"grader-sandbox-{lease.uid}-" if lease else "grader-sandbox-"))
            on_tmpfs = bool(self.limits.disk) and mount_tmpfs(base, int(self.limits.disk or 0))
            cgroups = Cgroups(base.name, self.limits) if self.isolation.cgroups else None
            self._uid = lease.uid if lease else None
            self._cgroups = cgroups
            return self._run_in(base, action, timeout, list(trace), list(probes), subreaper, on_tmpfs)
        finally:
            if lease is not None:
                for _ in range(50):
                    if not kill_user(lease.uid):
                        break
                    time.sleep(0.01)
                lease.release()
            if cgroups is not None:
                cgroups.remove()
            if base is not None:
                if on_tmpfs:
                    unmount(base)
                shutil.rmtree(base, ignore_errors=True)
            self._uid = None
            self._cgroups = None

    def _prepare(self, base: Path, action: dict[str, Any], trace: list[str], probes: list[str]) -> tuple[Path, Path, Path]:
        work, support, out = base / "work", base / "support", base / "out"
        copy_submission(self.source, work, self.module_file)
        shutil.copytree(INSIDE_DIR, support / "grader_inside", ignore=shutil.ignore_patterns("__pycache__", "boot.py"))
        _copy_bytecode(support / "grader_inside")
        shutil.copyfile(INSIDE_DIR / "boot.py", support / "grader_boot.py")
        for name, path in self.support_modules.items():
            shutil.copyfile(path, support / f"{name}.py")
        (out / "stacks").mkdir(parents=True)
        (base / "tmp").mkdir()
        (base / "root").mkdir()
        scenario = {
            "module": self.module,
            "work_dir": str(work),
            "start_method": self.start_method,
            "trace": trace,
            "probes": probes,
            "limits": self._rlimits(),
            "action": action,
        }
        (out / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        self._set_permissions(base, work, support, out)
        return work, support, out

    def _set_permissions(self, base: Path, work: Path, support: Path, out: Path) -> None:
        """Support code readable by all, the student's folders owned by the sandbox uid (root)."""
        if os.name != "posix":
            return
        os.chmod(base, 0o711)
        for root, _dirs, files in os.walk(support):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        os.chmod(out / "scenario.json", 0o644)
        if self._uid is None:
            return
        for folder in (work, base / "tmp", out, out / "stacks"):
            for root, _dirs, files in os.walk(folder):
                os.chown(root, self._uid, self._uid)
                os.chmod(root, 0o700)
                for name in files:
                    if root == str(out) and name == "scenario.json":
                        continue
                    os.chown(os.path.join(root, name), self._uid, self._uid)

    def _rlimits(self) -> dict[str, int | None]:
        """The per-process limits as the launcher and the runner set them."""
        processes = self.limits.processes
        if processes is not None and self._uid is None and os.name == "posix":
            processes += _user_tasks(os.getuid())  # RLIMIT_NPROC counts every task of the user
        return {
            "memory": self.limits.memory,
            "cpu_seconds": self.limits.cpu_seconds,
            "file_size": self.limits.file_size,
            "open_files": self.limits.open_files,
            "processes": processes,
            "core": 0,
        }

    def _environment(self, base: Path, work: Path, out: Path) -> dict[str, str]:
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(work),
            "TMPDIR": str(base / "tmp"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONIOENCODING": "utf-8",
            "GRADER_SANDBOX_OUT": str(out),
        }
        for name in ("SYSTEMROOT", "WINDIR", "COMSPEC"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def _hidden_paths(self) -> list[str]:
        """Folders a private file system view must not show, should they lie inside a system folder."""
        paths = [GRADER_DIR, *self.hide]
        if (GRADER_DIR.parent / "pyproject.toml").is_file():
            paths.append(GRADER_DIR.parent)  # a checkout: checks, references, tests
        source = self.source if self.source.is_dir() else self.source.parent
        paths.append(source)
        if sys.prefix != sys.base_prefix:
            paths.append(Path(sys.prefix))
        return sorted({str(Path(p).resolve()) for p in paths})

    def _launch_command(
        self, base: Path, work: Path, support: Path, env: dict[str, str], status_fd: int
    ) -> list[str]:
        interpreter = base_interpreter()
        python_dirs = sorted({os.path.realpath(sys.base_prefix), os.path.dirname(interpreter)})
        config = {
            "argv": [interpreter, "-s", str(support / "grader_boot.py")],
            "env": env,
            "work": str(work),
            "base": str(base),
            "support": str(support),
            "new_root": str(base / "root"),
            "python_dirs": python_dirs,
            "hide": self._hidden_paths(),
            "tmp_size": int(self.limits.disk or 64 * 1024 * 1024),
            "network_namespace": self.isolation.network,
            "mount_namespace": self.isolation.filesystem,
            "cgroups": [str(p) for p in (self._cgroups.paths if self._cgroups else [])],
            "limits": self._rlimits(),
            "uid": self._uid,
            "gid": self._uid,
            "uid_needs_private_root": not all(_world_reachable(p) for p in [interpreter, *python_dirs]),
        }
        path = base / "launch.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(config, handle)
        return [interpreter, "-I", "-S", str(LAUNCHER), str(path), str(status_fd)]

    def _protections(self, status: dict[str, Any] | None, subreaper: bool, on_tmpfs: bool) -> list[str]:
        """What contained this run, in words for the report (the same for every run of a machine)."""
        found = ["own session and process group"]
        if subreaper:
            found.append("child subreaper (escaped daemons are killed)")
        status = status or {}
        if status.get("uid") is not None:
            found.append("own unprivileged uid per sandbox (cannot signal the grader or write its files)")
        if status.get("network_namespace"):
            found.append("no network (network namespace)")
        if status.get("private_root"):
            found.append("private file system view (no checks, references, grader files or other submissions)")
        joined = set(status.get("cgroups") or [])
        groups = self._cgroups
        kinds = set()
        if groups is not None:
            for index, kind in enumerate(groups.kinds):
                if str(groups.paths[0 if groups.v2 else index]) in joined:
                    kinds.add(kind)
        caps = []
        if "pids" in kinds and self.limits.processes:
            caps.append(f"{self.limits.processes} tasks")
        if "memory" in kinds and self.limits.tree_memory:
            caps.append(f"{_size(self.limits.tree_memory)} of memory")
        if "cpu" in kinds and self.limits.cpus:
            caps.append(f"{self.limits.cpus:g} CPU")
        if caps:
            joined_caps = caps[0] if len(caps) == 1 else ", ".join(caps[:-1]) + " and " + caps[-1]
            found.append(f"cgroup: {joined_caps} for the whole tree")
        if on_tmpfs:
            found.append(f"private temporary folder ({_size(self.limits.disk or 0)} tmpfs), deleted afterwards")
        else:
            found.append("private temporary folder, deleted afterwards")
        found.append("scrubbed environment")
        names = {
            "memory": f"{_size(self.limits.memory or 0)} address space",
            "cpu_seconds": f"{self.limits.cpu_seconds} s CPU",
            "file_size": f"{_size(self.limits.file_size or 0)} files",
            "open_files": f"{self.limits.open_files} open files",
            "processes": f"{self.limits.processes} tasks"
            if status.get("uid") is not None
            else f"{self.limits.processes} more tasks of the user",
        }
        applied = [names[k] for k in status.get("limits", []) if k in names]
        if applied:
            found.append("per-process limits: " + ", ".join(applied))
        if status.get("no_new_privs"):
            found.append("no_new_privs")
        found.append("output capped and safely decoded")
        return found

    def _run_in(
        self,
        base: Path,
        action: dict[str, Any],
        timeout: float,
        trace: list[str],
        probes: list[str],
        subreaper: bool,
        on_tmpfs: bool = False,
    ) -> RawRun:
        work, support, out = self._prepare(base, action, trace, probes)
        env = self._environment(base, work, out)
        me = psutil.Process()
        baseline = {c.pid for c in me.children(recursive=True)}
        stdout_path, stderr_path = out / "stdout.txt", out / "stderr.txt"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(stdout_path, flags, 0o600)
        err_fd = os.open(stderr_path, flags, 0o600)
        status_r, status_w = os.pipe() if os.name == "posix" else (-1, -1)
        if os.name == "posix":
            command = self._launch_command(base, work, support, env, status_w)
            pass_fds: tuple[int, ...] = (status_w,)
        else:
            command = [sys.executable, "-s", str(support / "grader_boot.py")]
            pass_fds = ()
        started = time.monotonic()
        timed_out = False
        stacks: dict[int, ProcessStack] = {}
        leftovers: list[dict[str, Any]] = []
        try:
            proc = subprocess.Popen(
                command,
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=err_fd,
                start_new_session=True,
                close_fds=True,
                pass_fds=pass_fds,
            )
        finally:
            os.close(out_fd)
            os.close(err_fd)
            if status_w >= 0:
                os.close(status_w)
        try:
            try:
                wait_process(proc, timeout)  # woken by the end itself, not a polling loop
            except subprocess.TimeoutExpired:
                timed_out = True
                stacks = self._collect_stacks(proc.pid, baseline, out)
            else:
                leftovers = [
                    info
                    for p in self._tree(proc.pid, baseline)
                    if p.pid != proc.pid
                    for info in [_describe(p)]
                    if info.get("status") not in (None, psutil.STATUS_ZOMBIE) and not _is_tracker(p) and not _ending(p)
                ]
                if leftovers:
                    stacks = self._collect_stacks(proc.pid, baseline, out)
        finally:
            self._kill_tree(proc, baseline)
        duration = time.monotonic() - started
        status = self._read_status(status_r)
        notes = list(status.get("errors", [])) if status else ["the sandbox did not report its protections"]
        peak = self._cgroups.peak_memory() if self._cgroups else None
        if peak is not None:
            notes.append(f"peak memory of the tree: {peak} bytes")
        return RawRun(
            result=self._read_result(out / "result.json"),
            events=read_events(out / "evidence.jsonl"),
            stdout=read_capped(stdout_path),
            stderr=read_capped(stderr_path),
            timed_out=timed_out,
            exit_status=proc.returncode,
            duration=duration,
            main_pid=proc.pid,
            leftovers=leftovers,
            stacks=stacks,
            protections=self._protections(status, subreaper, on_tmpfs),
            notes=notes,
        )

    @staticmethod
    def _read_status(fd: int) -> dict[str, Any] | None:
        if fd < 0:
            return None
        try:
            os.set_blocking(fd, False)
            data = os.read(fd, 64 * 1024)
        except OSError:
            data = b""
        finally:
            os.close(fd)
        try:
            status = json.loads(data.decode("utf-8").splitlines()[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            return None
        return status if isinstance(status, dict) else None

    def _tree(self, root_pid: int, baseline: set[int]) -> list[psutil.Process]:
        """Every process of the sandbox: its tree, orphans re-parented here, its cgroups, its uid."""
        found: dict[int, psutil.Process] = {}
        extra: set[int] = self._cgroups.pids() if self._cgroups is not None else set()
        if self._uid is not None:
            extra.update(p.pid for p in _owned_by(self._uid))
        for pid in extra - baseline:
            try:
                found[pid] = psutil.Process(pid)
            except psutil.Error:
                continue
        try:
            root = psutil.Process(root_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            pass
        try:
            for child in psutil.Process().children(recursive=True):
                if child.pid not in baseline:
                    found.setdefault(child.pid, child)
        except psutil.Error:
            pass
        return list(found.values())

    def _collect_stacks(self, root_pid: int, baseline: set[int], out: Path) -> dict[int, ProcessStack]:
        """Where every live process of the tree is (pid -> :class:`grader.sandbox.stacks.ProcessStack`).

        py-spy reads the stacks from outside where it can; the others are asked for a
        faulthandler dump (``SIGUSR1``). Bounded to about ``stacks.TOTAL_BUDGET`` seconds.
        """
        procs: list[psutil.Process] = []
        tree = sorted(self._tree(root_pid, baseline), key=lambda p: (p.pid != root_pid, p.pid))
        for proc in tree:
            if len(procs) >= STACK_PROCESSES:  # a fork flood: the first ones tell the story
                break
            try:
                if proc.status() == psutil.STATUS_ZOMBIE or _is_tracker(proc):
                    continue
            except psutil.Error:
                continue
            procs.append(proc)
        return collect_stacks(procs, out)

    def _kill_tree(self, proc: subprocess.Popen[bytes], baseline: set[int]) -> None:
        """Kill every process of the sandbox (trackers get a short grace to clean up) and reap them."""
        seen: set[int] = set()
        grace_until = time.monotonic() + 1.0
        for _ in range(200):
            procs = []
            for p in self._tree(proc.pid, baseline):
                seen.add(p.pid)
                try:
                    if p.status() != psutil.STATUS_ZOMBIE:
                        procs.append(p)
                except psutil.Error:
                    continue
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
            if not procs:
                break
            if proc.poll() is not None and time.monotonic() < grace_until and all(_is_tracker(p) for p in procs):
                wait_any([p.pid for p in procs], min(0.2, grace_until - time.monotonic()))
                continue
            for p in procs:
                try:
                    p.suspend()
                except psutil.Error:
                    pass
            for p in procs:
                try:
                    p.kill()
                except psutil.Error:
                    pass
            self._reap(seen, proc.pid)
            time.sleep(0.005)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self._reap(seen, proc.pid)

    @staticmethod
    def _reap(pids: set[int], skip: int) -> None:
        for pid in pids:
            if pid == skip:
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except (ChildProcessError, OSError):
                pass

    @staticmethod
    def _read_result(path: Path) -> dict[str, Any] | None:
        try:
            if path.stat().st_size > RESULT_BYTES:
                return {"internal_error": "the result was too large to read"}
            data = json.loads(path.read_text(encoding="ascii"))
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, dict):
            return None
        for phase in ("import", "call"):
            part = data.get(phase)
            if isinstance(part, dict) and isinstance(part.get("error"), dict):
                part["error"] = _clean_strings(part["error"])
        return data


def _clean_strings(value: Any, depth: int = 0) -> Any:
    """An exception description with every string made safe to show (see :func:`safe_text`)."""
    if isinstance(value, str):
        return safe_text(value)
    if depth > 6:
        return None
    if isinstance(value, dict):
        return {k: _clean_strings(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(v, depth + 1) for v in value]
    return value


def read_events(path: Path) -> list[dict[str, Any]]:
    """Read evidence events, skipping anything malformed (the file is written by untrusted code)."""
    events: list[dict[str, Any]] = []
    try:
        with open_plain(path) as handle:
            data = handle.read(EVIDENCE_BYTES)
    except OSError:
        return events
    for raw in data.splitlines():
        if len(events) >= EVIDENCE_EVENTS:
            break
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if (
            isinstance(event, dict)
            and isinstance(event.get("ev"), str)
            and type(event.get("pid")) is int
            and type(event.get("t")) in (int, float)
        ):
            events.append(event)
    events.sort(key=lambda e: e["t"])
    return events


def decode_value(data: Any) -> Any:
    """Decode a wire value from a sandbox result (raises ``wire.WireError`` if malformed)."""
    return wire.decode(data)
