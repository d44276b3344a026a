"""Run student code in a fresh, contained process tree and read back plain data.

This is the trusted side of the sandbox. Each :meth:`Sandbox.run` call:

1. makes a private temporary folder with a copy of the submission (``work/``),
   the in-sandbox support code (``support/``: ``grader_boot.py`` and the
   ``grader_inside`` package) and an output folder (``out/``);
2. starts ``python grader_boot.py`` in a new session and process group, with a
   scrubbed environment, stdout and stderr going to files (never pipes: an
   orphaned grandchild could hold a pipe open forever), and resource limits;
3. waits for it with a deadline; on timeout, or when processes outlive the main
   one, reads where every process of the tree is (py-spy, else ``SIGUSR1`` ->
   ``faulthandler``; see :mod:`grader.stacks`) before killing anything;
4. kills every process the student's code left behind, including ones that
   escaped with ``setsid`` and a double fork (this process is a Linux child
   subreaper, so orphans are re-parented to it and found), and reaps them;
5. reads ``result.json``, ``evidence.jsonl``, stdout and stderr back as plain
   data (nothing is unpickled), capped in size, and deletes the folder.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .inside import wire
from .stacks import collect as collect_stacks

INSIDE_DIR = Path(__file__).parent / "inside"
STDOUT_HEAD = 48 * 1024
STDOUT_TAIL = 16 * 1024
EVIDENCE_BYTES = 64 * 1024 * 1024
EVIDENCE_EVENTS = 400_000
RESULT_BYTES = 256 * 1024 * 1024
KILL_GRACE = 0.2
SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}
MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_SUBMISSION_FILES = 2000


@dataclass(frozen=True)
class Limits:
    """Resource limits applied to every process of a sandbox (``None``: no limit)."""

    memory: int | None = 1024 * 1024 * 1024
    cpu_seconds: int | None = 120
    file_size: int | None = 64 * 1024 * 1024
    open_files: int | None = 256
    processes: int | None = None

    def as_dict(self) -> dict[str, int | None]:
        return {
            "memory": self.memory,
            "cpu_seconds": self.cpu_seconds,
            "file_size": self.file_size,
            "open_files": self.open_files,
            "processes": self.processes,
        }


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
    stacks: dict[int, str] = field(default_factory=dict)
    protections: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_SUBREAPER: bool | None = None


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux), so orphaned sandbox processes come back to it."""
    global _SUBREAPER
    if _SUBREAPER is None:
        _SUBREAPER = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
            except (OSError, AttributeError):
                _SUBREAPER = False
    return _SUBREAPER


def clean_text(data: bytes) -> str:
    """Decode captured output safely: bad UTF-8 replaced, control characters shown escaped."""
    text = data.decode("utf-8", "replace")
    return "".join(
        ch if ch in "\n\t" or (ch >= " " and ch != "\x7f") else f"\\x{ord(ch):02x}" for ch in text
    )


def read_capped(path: Path, head: int = STDOUT_HEAD, tail: int = STDOUT_TAIL) -> str:
    """Read a captured stream, keeping its head and tail and saying how much was cut."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
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


class SubmissionTooLarge(ValueError):
    """The submission folder is too big to copy into a sandbox."""


def _is_tracker(proc: psutil.Process) -> bool:
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.Error, OSError):
        return False
    return "multiprocessing.resource_tracker" in cmd or "multiprocessing.forkserver" in cmd


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
    ) -> None:
        self.source = Path(source)
        self.module = module
        self.module_file = module_file or f"{module}.py"
        self.start_method = start_method
        self.limits = limits or Limits()
        self.support_modules = dict(support_modules or {})

    def run(
        self,
        action: dict[str, Any],
        *,
        timeout: float,
        trace: list[str] | tuple[str, ...] = (),
        probes: list[str] | tuple[str, ...] = (),
    ) -> RawRun:
        """Run one action (``{"kind": "import"}``, ``call`` or ``driver``) and return what happened."""
        subreaper = become_subreaper()
        base = Path(tempfile.mkdtemp(prefix="grader-sandbox-"))
        try:
            return self._run_in(base, action, timeout, list(trace), list(probes), subreaper)
        finally:
            shutil.rmtree(base, ignore_errors=True)

    def _prepare(self, base: Path, action: dict[str, Any], trace: list[str], probes: list[str]) -> tuple[Path, Path, Path]:
        work, support, out = base / "work", base / "support", base / "out"
        copy_submission(self.source, work, self.module_file)
        shutil.copytree(INSIDE_DIR, support / "grader_inside", ignore=shutil.ignore_patterns("__pycache__", "boot.py"))
        shutil.copyfile(INSIDE_DIR / "boot.py", support / "grader_boot.py")
        for name, path in self.support_modules.items():
            shutil.copyfile(path, support / f"{name}.py")
        (out / "stacks").mkdir(parents=True)
        (base / "tmp").mkdir()
        scenario = {
            "module": self.module,
            "work_dir": str(work),
            "start_method": self.start_method,
            "trace": trace,
            "probes": probes,
            "limits": self.limits.as_dict(),
            "action": action,
        }
        (out / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        return work, support, out

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

    def _run_in(
        self, base: Path, action: dict[str, Any], timeout: float, trace: list[str], probes: list[str], subreaper: bool
    ) -> RawRun:
        work, support, out = self._prepare(base, action, trace, probes)
        protections = ["own process group and session", "private working folder", "scrubbed environment"]
        if subreaper:
            protections.append("child subreaper (escaped daemons are found)")
        me = psutil.Process()
        baseline = {c.pid for c in me.children(recursive=True)}
        stdout_path, stderr_path = out / "stdout.txt", out / "stderr.txt"
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(stdout_path, flags, 0o600)
        err_fd = os.open(stderr_path, flags, 0o600)
        started = time.monotonic()
        timed_out = False
        stacks: dict[int, str] = {}
        leftovers: list[dict[str, Any]] = []
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", str(support / "grader_boot.py")],
                cwd=work,
                env=self._environment(base, work, out),
                stdin=subprocess.DEVNULL,
                stdout=out_fd,
                stderr=err_fd,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            os.close(out_fd)
            os.close(err_fd)
        try:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                stacks = self._collect_stacks(proc.pid, baseline, out)
            else:
                leftovers = [
                    info
                    for p in self._tree(proc.pid, baseline)
                    if p.pid != proc.pid
                    for info in [_describe(p)]
                    if info.get("status") not in (None, psutil.STATUS_ZOMBIE) and not _is_tracker(p)
                ]
                if leftovers:
                    stacks = self._collect_stacks(proc.pid, baseline, out)
        finally:
            self._kill_tree(proc, baseline)
        duration = time.monotonic() - started
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
            protections=protections + [f"limits: {', '.join(k for k, v in self.limits.as_dict().items() if v)}"],
        )

    @staticmethod
    def _tree(root_pid: int, baseline: set[int]) -> list[psutil.Process]:
        found: dict[int, psutil.Process] = {}
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

    def _collect_stacks(self, root_pid: int, baseline: set[int], out: Path) -> dict[int, str]:
        """Where every live process of the tree is (pid -> JSON document of :mod:`grader.stacks`).

        py-spy reads the stacks from outside where it can; the others are asked for a
        faulthandler dump (``SIGUSR1``). Bounded to about ``stacks.TOTAL_BUDGET`` seconds.
        """
        procs = []
        for proc in self._tree(root_pid, baseline):
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
                time.sleep(0.02)
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
        return data if isinstance(data, dict) else None


def read_events(path: Path) -> list[dict[str, Any]]:
    """Read evidence events, skipping anything malformed (the file is written by untrusted code)."""
    events: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as handle:
            data = handle.read(EVIDENCE_BYTES)
    except OSError:
        return events
    for raw in data.splitlines():
        if len(events) >= EVIDENCE_EVENTS:
            break
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
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
