"""Run student code in a fresh, contained process tree and read back plain data: the orchestration.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
Each :meth:`Sandbox.run` call:

1. makes a private temporary folder (as root: a size-limited ``tmpfs``) with a copy of the submission (``work/``), the
   in-sandbox support code (``support/``: ``grader_boot.py``, ``grader_inside``), a private ``tmp/`` and an output
   folder (``out/``) (:mod:`grader.sandbox.folder`); as root it also leases a uid of its own and makes cgroups that
   count and cap the whole tree (:mod:`grader.sandbox.containment`); it listens on the evidence stream, which receives
   the probes' events while the run is in flight (:mod:`grader.sandbox.stream`);
2. starts ``python grader_boot.py`` through :mod:`grader.sandbox.launch` (which joins the cgroups, unshares
   the network and mount namespaces, shows the student a minimal file system, sets the resource limits and
   drops to the leased uid) in a new session and process group, with a scrubbed environment, stdout and
   stderr going to files (never pipes: an orphaned grandchild could hold a pipe open forever);
3. waits for it with a deadline; on timeout, or when processes outlive the main one, reads where every
   process of the tree is (py-spy, else ``SIGUSR1`` -> ``faulthandler``; see :mod:`grader.sandbox.stacks`)
   before killing anything;
4. kills every process the student's code left behind, including ones that escaped with ``setsid`` and a
   double fork (this process is a Linux child subreaper, so orphans are re-parented to it and found), and
   reaps them (:func:`grader.processes.kill_tree`);
5. reads ``result.json``, ``evidence.jsonl`` (where there is no stream), stdout and stderr back
   (:func:`grader.sandbox.readback.read_back`: plain files only, no link or special file is opened, each read bounded)
   and deletes the folder; once ``SIGALRM`` is no longer held back, parses them as plain data (nothing is unpickled;
   JSON too deep or too big is refused). A file refused is recorded in :attr:`RawRun.refused`: the check fails with it.

Which of these protections the platform allowed is in :attr:`RawRun.protections`; ``docs/security.md`` has the threat model.
"""

from __future__ import annotations

import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from grader.processes import (
    become_subreaper,
    descendants,
    describe_process,
    find_tree,
    is_ending,
    is_tracker,
    kill_tree,
    wait_process,
)
from grader.sandbox import blocked
from grader.sandbox.containment import (
    HELPER_TASKS,
    Cgroups,
    Isolation,
    LeaseRefused,
    Limits,
    SandboxRefused,
    UidLease,
    is_root,
    kill_user,
    lease_uid,
    list_protections,
    mount_tmpfs,
    owned_by,
    unmount,
    user_tasks,
    world_reachable,
)
from grader.sandbox.folder import GRADER_DIR, copy_submission, copy_support, set_permissions
from grader.sandbox.pids import PidMap, Roles
from grader.sandbox.readback import (
    Loaded,
    Refused,
    evidence_file_problems,
    file_id,
    load_run_files,
    parse_evidence,
    parse_result,
    read_status,
)
from grader.sandbox.stacks import ProcessStack
from grader.sandbox.stacks import collect as collect_stacks
from grader.sandbox.stream import EvidenceChannel
from grader.sandbox.witness import KernelView, Sampler, available
from grader.served import BASE_ENVIRONMENT, ServedProcess, base_interpreter
from grader.served import launch as launch_served

LAUNCHER = Path(__file__).resolve().parent / "launch.py"
LAUNCH_CONFIG = "launch.cfg"
"""The launcher's configuration, in the run's folder: the launcher reads it, or a fork of the fork server."""
EVIDENCE = "evidence.jsonl"
UNSAFE = "UNSAFE, allowed by --unsafe-no-sandbox"
STACK_PROCESSES = 16


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
    refused: list[dict[str, str]] = field(default_factory=list)
    """Files the run left that the grader would not read (see :class:`grader.sandbox.readback.Refused`):
    each ``{"observed", "expected", "hint"}``; a check fails with the first."""
    integrity: list[str] = field(default_factory=list)
    """What the sandbox host saw that the evidence cannot be trusted for (the evidence file replaced ...)."""
    kernel: KernelView | None = None
    """What the kernel showed of the tree while it ran (:mod:`grader.sandbox.witness`); ``None``: no ``/proc``."""
    deadlock: blocked.Proof | None = None
    """Why the run was ended before its time limit, deadlocked (:mod:`grader.sandbox.blocked`); it also timed out."""


def _parse(raw: RawRun, loaded: Loaded) -> None:
    """Fill ``raw.result`` and ``raw.events`` from the loaded bytes (a refusal is recorded, not raised)."""
    try:
        raw.result = parse_result(loaded.result)
    except Refused as exc:
        raw.refused.append(exc.as_dict())
    try:
        raw.events = parse_evidence(loaded)
    except Refused as exc:
        raw.refused.append(exc.as_dict())


class HeldAlarm:
    """Holds ``SIGALRM`` back while a run is under way, and delivers it afterwards.

    The signal is blocked in this thread and, because a process-directed signal
    goes to any thread that does not block it (pytest-xdist workers have I/O
    threads), the Python-level handler is also swapped for one that only notes
    the signal; the original handler is called once the run is over, unless ``drop``
    (the run timed out itself: the check fails with its diagnosis, which the alarm would lose).
    """

    def __init__(self) -> None:
        self.mask: set[Any] | None = None
        self.handler: Any = None
        self.pending: list[Any] = []
        self.drop = False

    def __enter__(self) -> HeldAlarm:
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
        if self.mask is not None:  # a blocked alarm is delivered here, to the handler that only notes it
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        if self.handler is not None:
            signal.signal(signal.SIGALRM, self.handler)
        if self.pending and self.handler is not None and not self.drop:
            self.handler(signal.SIGALRM, self.pending[0])


class _Started(NamedTuple):
    """A launched sandbox: its first process, the read end of the launcher's status pipe, when it started."""

    proc: subprocess.Popen[bytes] | ServedProcess
    status_fd: int
    started: float


class _Watched(NamedTuple):
    """What watching a run found: whether it timed out (or deadlocked), the stacks, the leftovers, the status."""

    timed_out: bool
    stacks: dict[int, ProcessStack]
    leftovers: list[dict[str, Any]]
    status: dict[str, Any] | None
    deadlock: blocked.Proof | None = None


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
        # 1 where spawn children are cloned from a zygote (grader/inside/zygote.py): a task of the sandbox's
        self._zygote = int(start_method == "spawn" and os.environ.get("GRADER_SPAWN_SERVER") != "off")
        self.limits = limits or Limits()
        self.isolation = isolation or Isolation()
        self.support_modules = dict(support_modules or {})
        self.hide = [Path(p) for p in hide]
        self._uid: int | None = None
        self._cgroups: Cgroups | None = None
        self._contained = False
        """Whether the launcher put the run in its cgroups: then they hold every process of it, escaped or not."""
        self._unsafe: str | None = None
        self._evidence: EvidenceChannel | None = None
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
        way and delivered when it returns (dropped if the run timed out itself): the run has its own
        deadline, and a check timing out must not cut the kill and clean-up of the tree short.
        """
        with HeldAlarm() as held:
            raw, loaded = self._run_held(action, timeout, trace, probes)
            self.last_protections, held.drop = list(raw.protections), raw.timed_out  # kept should the alarm end it
        _parse(raw, loaded)  # bounded, and no longer under the held alarm: the check's own time limit applies
        return raw

    def _run_held(
        self,
        action: dict[str, Any],
        timeout: float,
        trace: list[str] | tuple[str, ...],
        probes: list[str] | tuple[str, ...],
    ) -> tuple[RawRun, Loaded]:
        """Lease a uid, make the folder and the cgroups, run; then clean all of them up, whatever happened."""
        subreaper = become_subreaper()
        lease = self._lease()
        base: Path | None = None
        on_tmpfs = False
        cgroups: Cgroups | None = None
        try:
            base = Path(tempfile.mkdtemp(prefix=f"grader-sandbox-{lease.uid}-" if lease else "grader-sandbox-"))
            on_tmpfs = bool(self.limits.disk) and mount_tmpfs(base, int(self.limits.disk or 0))
            helpers = (HELPER_TASKS if self.isolation.processes and self.isolation.filesystem else 0) + self._zygote
            cgroups = Cgroups(base.name, self.limits, helpers) if self.isolation.cgroups else None
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
            if self._evidence is not None:
                self._evidence.close()
            if base is not None:
                if on_tmpfs:
                    unmount(base)
                shutil.rmtree(base, ignore_errors=True)
            self._uid = self._cgroups = self._evidence = None
            self._contained = False

    def _lease(self) -> UidLease | None:
        """A uid of the sandbox's own (``None`` without root); fails closed unless ``--unsafe-no-sandbox`` allowed it."""
        self._unsafe = None
        if not self.isolation.separate_user:
            if is_root():
                self._refuse("this sandbox was made without a uid of its own")
            return None
        try:
            return lease_uid()
        except LeaseRefused as exc:
            self._refuse(f"no sandbox uid could be leased: {exc}")
            return None

    def _refuse(self, why: str) -> None:
        """Student code would keep root's uid: raise :class:`SandboxRefused`, or note it where that is allowed."""
        if self.isolation.fail_closed:
            raise SandboxRefused(f"student code would run as root: {why}")
        self._unsafe = why

    def _prepare(
        self, base: Path, action: dict[str, Any], trace: list[str], probes: list[str]
    ) -> tuple[Path, Path, Path, EvidenceChannel]:
        """Fill the sandbox's folder (see :mod:`grader.sandbox.folder`); returns ``work``, ``support`` and ``out``."""
        work, support, out = base / "work", base / "support", base / "out"
        copy_submission(self.source, work, self.module_file)
        copy_support(support, self.support_modules)
        (out / "stacks").mkdir(parents=True)
        (base / "tmp").mkdir()
        (base / "root").mkdir()
        scenario = {
            "module": self.module,
            "work_dir": str(work),
            "audit_hook": self.isolation.audit_hook,
            "start_method": self.start_method,
            "spawn_server": bool(self._zygote),
            "trace": trace,
            "probes": probes,
            "limits": self._rlimits(),
            "action": action,
        }
        self._evidence = evidence = EvidenceChannel(out, scenario, EVIDENCE)
        (out / "scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
        set_permissions(base, work, support, out, self._uid)
        return work, support, out, evidence

    def _rlimits(self) -> dict[str, int | None]:
        """The per-process limits as the launcher and the runner set them."""
        processes = None if self.limits.processes is None else self.limits.processes + self._zygote
        if processes is not None and self._uid is None and os.name == "posix":
            processes += user_tasks(os.getuid())  # RLIMIT_NPROC counts every task of the user
        return {
            "memory": self.limits.memory,
            "cpu_seconds": self.limits.cpu_seconds,
            "file_size": self.limits.file_size,
            "open_files": None if self.limits.open_files is None else self.limits.open_files + self._zygote,
            "processes": processes,
            "core": 0,
        }

    def _environment(self, base: Path, work: Path, out: Path) -> dict[str, str]:
        """The scrubbed environment of the student's code."""
        env = {**BASE_ENVIRONMENT, "HOME": str(work), "TMPDIR": str(base / "tmp"), "GRADER_SANDBOX_OUT": str(out)}
        env.update({name: os.environ[name] for name in ("SYSTEMROOT", "WINDIR", "COMSPEC") if name in os.environ})
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
        """Write the launcher's configuration (readable by this user only) and return the command that starts it."""
        interpreter = base_interpreter()
        python_dirs = sorted({os.path.realpath(sys.base_prefix), os.path.dirname(interpreter)})
        config = {
            "argv": [interpreter, "-S", str(support / "grader_boot.py")],
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
            "process_namespaces": self.isolation.processes,
            "cgroups": [str(p) for p in (self._cgroups.paths if self._cgroups else [])],
            "limits": self._rlimits(),
            "uid": self._uid,
            "gid": self._uid,
            "uid_needs_private_root": not all(world_reachable(p) for p in [interpreter, *python_dirs]),
            "fail_closed": self.isolation.fail_closed,
        }
        path = base / LAUNCH_CONFIG
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:  # marshal: the launcher reads it without importing json
            marshal.dump(config, handle)
        return [interpreter, "-I", "-S", str(LAUNCHER), str(path), str(status_fd)]

    def _run_in(
        self,
        base: Path,
        action: dict[str, Any],
        timeout: float,
        trace: list[str],
        probes: list[str],
        subreaper: bool,
        on_tmpfs: bool = False,
    ) -> tuple[RawRun, Loaded]:
        """Prepare the folder, launch, watch, kill the tree and read back what the run left."""
        work, support, out, evidence = self._prepare(base, action, trace, probes)
        evidence_id = file_id(evidence.path)
        env = self._environment(base, work, out)
        baseline = set(descendants(os.getpid()))  # a few /proc files, not every process's (psutil's children)
        evidence.start()
        started = self._start(base, work, support, env, out)
        sampler = Sampler(started.proc.pid, exclude=baseline).start() if available() else None
        if isinstance(started.proc, ServedProcess):
            started.proc.go()  # the fork runs the launcher's steps once the kernel is being watched, as a launcher's start takes
        try:
            whole = subreaper or self._cgroups is not None  # no orphan can hide from the deadlock watch
            watched = self._watch(started, baseline, out, timeout, whole and blocked.available())
        finally:
            kernel = sampler.stop() if sampler is not None else None
        streamed = evidence.stop(kernel)  # the tree is gone: nothing more can arrive
        if kernel is not None:
            kernel.complete = kernel.namespace or subreaper  # else orphans leave the tree unseen
        duration = time.monotonic() - started.started
        status = watched.status
        if status and status.get("refused"):
            self._refuse("; ".join(str(e) for e in status.get("errors", [])) or "the launcher could not drop to the uid")
        notes, main_pid = self._notes(status), status.get("main_pid") if status else None
        loaded, stdout, stderr, refused = load_run_files(out, streamed)
        raw = RawRun(
            result=None,
            events=[],
            stdout=stdout,
            stderr=stderr,
            timed_out=watched.timed_out,
            exit_status=started.proc.returncode,
            duration=duration,
            main_pid=main_pid if type(main_pid) is int else started.proc.pid,
            leftovers=watched.leftovers,
            stacks=watched.stacks,
            protections=list_protections(status, self.limits, self._cgroups, subreaper, on_tmpfs),
            notes=notes,
            integrity=evidence_file_problems(evidence.path, evidence_id),
            refused=refused,
            kernel=kernel,
            deadlock=watched.deadlock,
        )
        if self._unsafe:
            raw.protections.insert(0, f"{UNSAFE}: student code ran as root with every capability ({self._unsafe})")
        return raw, loaded

    def _servable(self) -> bool:
        """Whether the fork server may start this run: only into a PID namespace of its own.

        A served run's first process is the server's child, not this process's: what it leaves behind
        must stay in the namespace (whose init the grader kills), not come back to the server. A server
        runs only where PID namespaces are available (:func:`grader.served.start_server`).
        """
        return os.name == "posix" and self.isolation.processes and self.isolation.filesystem

    def _start(self, base: Path, work: Path, support: Path, env: dict[str, str], out: Path) -> _Started:
        """Start the sandbox's first process in a new session, stdout and stderr going to files in ``out``."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        out_fd = os.open(out / "stdout.txt", flags, 0o600)
        err_fd = os.open(out / "stderr.txt", flags, 0o600)
        status_r, status_w = os.pipe() if os.name == "posix" else (-1, -1)
        if os.name == "posix":
            command = self._launch_command(base, work, support, env, status_w)
            pass_fds: tuple[int, ...] = (status_w,)
        else:
            command = [sys.executable, "-S", str(support / "grader_boot.py")]
            pass_fds = ()
        started = time.monotonic()
        try:
            served = launch_served(base / LAUNCH_CONFIG, out_fd, err_fd, status_w) if self._servable() else None
            proc = served or subprocess.Popen(
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
        return _Started(proc, status_r, started)

    def _watch(self, started: _Started, baseline: set[int], out: Path, timeout: float, prove: bool) -> _Watched:
        """Wait for the run (timed out? deadlocked?); read the stacks on either or when processes are left over; kill.

        With ``prove``, the tree is watched while it runs and ended as soon as the kernel proves it
        deadlocked (:func:`grader.sandbox.blocked.wait_or_prove`); the time limit stays the backstop.

        The leftovers and the stacks name processes by the pids the student's code
        knows them by (:class:`grader.sandbox.pids.PidMap`), as the evidence does.
        """
        proc = started.proc
        timed_out = False
        stacks: dict[int, ProcessStack] = {}
        leftovers: list[dict[str, Any]] = []
        status: dict[str, Any] | None = None
        status_fd = started.status_fd
        proof: blocked.Proof | None = None
        try:
            try:
                if prove:
                    proof = blocked.wait_or_prove(proc, timeout, lambda: self._roots(proc.pid, baseline))
                    timed_out = proof is not None
                else:
                    wait_process(proc, timeout)  # woken by the end itself, not a polling loop
            except subprocess.TimeoutExpired:
                timed_out = True
            status, status_fd = read_status(status_fd), -1  # written before any student code ran
            self._contained = bool(self._cgroups is not None and (status or {}).get("cgroups"))
            roles = self._roles(proc.pid, baseline, status)
            if not timed_out:
                leftovers = self._leftovers(roles, baseline)
            if timed_out or leftovers:
                stacks = self._collect_stacks(roles, baseline, out, proof.window if proof is not None else None)
        finally:
            read_status(status_fd)  # closes it, if not read yet
            kill_tree(proc, lambda: self._tree(proc.pid, baseline))
        return _Watched(timed_out, stacks, leftovers, status, proof)

    def _roots(self, root_pid: int, baseline: set[int]) -> list[int]:
        """Where the tree's walk starts: its first process, its cgroups' processes, orphans re-parented here."""
        cgroups = list(self._cgroups.pids()) if self._cgroups else []
        return [root_pid, *cgroups, *(p for p in blocked.own_children() if p not in baseline and p != root_pid)]

    def _roles(self, root_pid: int, baseline: set[int], status: dict[str, Any] | None) -> Roles:
        """Which processes of the tree are the grader's helpers, which one is the student's first (host pids).

        With a PID namespace the first process (``root_pid``) only relays the end of
        the student's first process and init (the namespace's pid 1) reaps orphans:
        neither runs student code, so neither is a leftover nor has a stack to read.
        """
        pids = PidMap(p.pid for p in self._tree(root_pid, baseline))
        inits = pids.inits()
        if not (status or {}).get("pid_namespace") and not inits:
            return Roles(root_pid, root_pid, frozenset(), pids)
        inner = (status or {}).get("main_pid")
        main = pids.host(inner) if type(inner) is int else None
        return Roles(root_pid, main if main is not None else -1, frozenset(inits | {root_pid}), pids)

    def _leftovers(self, roles: Roles, baseline: set[int]) -> list[dict[str, Any]]:
        """The processes still running code after the first one ended (not trackers, not exiting), described."""
        return [
            roles.pids.process(info)
            for p in self._tree(roles.root, baseline)
            if p.pid != roles.root and p.pid not in roles.helpers
            for info in [describe_process(p)]
            if info.get("status") not in (None, psutil.STATUS_ZOMBIE) and not is_tracker(p) and not is_ending(p)
        ]

    def _notes(self, status: dict[str, Any] | None) -> list[str]:
        """What the launcher could not do, and the tree's peak memory where a cgroup counted it."""
        notes = list(status.get("errors", [])) if status else ["the sandbox did not report its protections"]
        if (peak := self._cgroups.peak_memory() if self._cgroups else None) is not None:
            notes.append(f"peak memory of the tree: {peak} bytes")
        return notes

    def _tree(self, root_pid: int, baseline: set[int]) -> list[psutil.Process]:
        """Every process of the sandbox: its tree, orphans re-parented here, its cgroups, its uid."""
        extra: set[int] = self._cgroups.pids() if self._cgroups is not None else set()
        if self._uid is not None and not self._contained:  # no process leaves a cgroup it was started in
            extra.update(p.pid for p in owned_by(self._uid))
        return find_tree(root_pid, baseline, extra)

    def _collect_stacks(self, roles: Roles, baseline: set[int], out: Path, idle_for: float | None) -> dict[int, ProcessStack]:
        """Where every live process of the tree is (the student's pid -> :class:`grader.sandbox.stacks.ProcessStack`).

        py-spy reads the stacks from outside where it can; the others are asked for a faulthandler dump (``SIGUSR1``).
        Bounded to about ``stacks.TOTAL_BUDGET`` seconds. ``idle_for``: a proven deadlock's window (no thread ran in it).
        """
        procs: list[psutil.Process] = []
        tree = sorted(self._tree(roles.root, baseline), key=lambda p: (p.pid != roles.main, p.pid))
        for proc in tree:
            if len(procs) >= STACK_PROCESSES:  # a fork flood: the first ones tell the story
                break
            if proc.pid in roles.helpers:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE or is_tracker(proc):
                    continue
            except psutil.Error:
                continue
            procs.append(proc)
        roles.pids.learn(p.pid for p in procs)
        names = {p.pid: roles.pids.of(p.pid) for p in procs}
        return roles.pids.stacks(collect_stacks(procs, out, names=names, idle_for=idle_for))
