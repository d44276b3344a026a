"""Read where every process of a sandbox is, from the outside, before it is killed.

Trusted side. :func:`collect` takes the processes of a hung (or left-over)
sandbox and returns, per process, one JSON document (a string) describing
each of its threads: the Python frames (innermost first), whether the thread
was running or waiting, the CPU time it used while it was watched, and what
the kernel says it waits for (``/proc/<pid>/task/<tid>/wchan``, Linux).

Two ways to read a stack, whichever works:

- **py-spy** (``py-spy dump --json``) reads the interpreter's memory through
  ``ptrace``; it needs no cooperation from the student's process (which may
  have undone any hook) and sees threads by their OS id. It needs
  ``CAP_SYS_PTRACE`` for another user's process (root has it) or a permissive
  ``kernel.yama.ptrace_scope``. Dumps run in parallel, one ``py-spy`` per
  process, each with a deadline.
- **faulthandler**: every sandbox process registered ``faulthandler`` on
  ``SIGUSR1`` (``grader_inside.probes.install_stacks``), writing all threads
  to ``out/stacks/<pid>.txt``. Used for the processes py-spy could not read,
  because the signal interrupts blocking calls and, in a process that never
  installed the handler, ends it.

Busy or blocked: the CPU time of every process and thread is sampled before
and after the dumps (at least :data:`CPU_WINDOW` seconds apart), so a thread
spinning in a loop is told from one waiting in a blocking call.

A document looks like this (``threads[].frames`` innermost first)::

    {"pid": 123, "ppid": 120, "name": "python3", "status": "sleeping",
     "via": "py-spy", "error": null, "notes": [],
     "work_dir": "/tmp/grader-sandbox-x/work", "support_dir": "/tmp/grader-sandbox-x/support",
     "window": 0.31, "cpu": 0.0,
     "threads": [{"id": 123, "name": "MainThread", "active": false, "cpu": 0.0,
                  "wchan": "futex_do_wait",
                  "frames": [{"func": "increment", "file": ".../work/locked_counter.py", "line": 12}]}]}

``via`` is ``null`` and ``error`` says why when no stack could be read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil

__all__ = ["CPU_WINDOW", "collect", "find_py_spy", "parse_faulthandler_text"]

CPU_WINDOW = 0.3
TOTAL_BUDGET = 2.5
PY_SPY_TIMEOUT = 1.5
FAULTHANDLER_WAIT = 0.8
MAX_THREADS = 64
MAX_FRAMES = 80
MAX_TEXT = 300
MAX_DUMP_BYTES = 4 * 1024 * 1024

_THREAD = re.compile(r"^(Current thread|Thread) (0x[0-9a-fA-F]+)")
_FRAME = re.compile(r'^\s+File "(?P<file>.*)", line (?P<line>\d+) in (?P<func>\S+)')


def find_py_spy() -> str | None:
    """The ``py-spy`` executable: beside this interpreter (a virtual environment), else on ``PATH``."""
    name = "py-spy.exe" if sys.platform == "win32" else "py-spy"
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def _cut(value: Any) -> str:
    return str(value)[:MAX_TEXT]


def _cpu(proc: psutil.Process) -> tuple[float | None, dict[int, float]]:
    """CPU seconds used so far by the process and by each of its threads (OS ids)."""
    try:
        with proc.oneshot():
            times = proc.cpu_times()
            threads = {t.id: t.user_time + t.system_time for t in proc.threads()}
        return times.user + times.system, threads
    except (psutil.Error, OSError):
        return None, {}


def _wchan(pid: int, tid: int) -> str | None:
    """What the kernel says the thread sleeps in (``futex_do_wait``, ``pipe_write``...), Linux only."""
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan", encoding="ascii", errors="replace") as handle:
            text = handle.read(100).strip()
    except OSError:
        return None
    return text if text and text != "0" else None


def _py_spy(executable: str, pid: int, timeout: float) -> tuple[list[dict[str, Any]] | None, str | None, float]:
    """Threads of ``pid`` read by py-spy, or ``None`` and why not; plus the seconds it took."""
    started = time.monotonic()
    try:
        done = subprocess.run(
            [executable, "dump", "--pid", str(pid), "--json"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=max(0.05, timeout),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"py-spy did not answer within {timeout:.1f} s", time.monotonic() - started
    except OSError as exc:
        return None, f"py-spy could not be started: {exc}", time.monotonic() - started
    took = time.monotonic() - started
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return None, "py-spy: " + _cut(message[0] if message else f"exit status {done.returncode}"), took
    try:
        data = json.loads(done.stdout[:MAX_DUMP_BYTES])
    except ValueError:
        return None, "py-spy gave output that is not JSON", took
    if not isinstance(data, list):
        return None, "py-spy gave an unexpected document", took
    threads = []
    for raw in data[:MAX_THREADS]:
        if not isinstance(raw, dict):
            continue
        frames = []
        for frame in raw.get("frames", [])[:MAX_FRAMES]:
            if isinstance(frame, dict) and type(frame.get("line")) is int:
                frames.append({"func": _cut(frame.get("name", "?")), "file": _cut(frame.get("filename", "?")),
                               "line": frame["line"]})
        os_id = raw.get("os_thread_id")
        threads.append(
            {
                "id": os_id if type(os_id) is int else raw.get("thread_id"),
                "name": _cut(raw.get("thread_name") or ""),
                "active": bool(raw.get("active")),
                "frames": frames,
            }
        )
    return threads, None, took


def parse_faulthandler_text(text: str) -> list[dict[str, Any]]:
    """Threads of a ``faulthandler`` all-threads dump, in the document's thread form."""
    threads: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        head = _THREAD.match(line)
        if head:
            current = {"id": head.group(2), "name": "", "current": head.group(1) == "Current thread",
                       "active": None, "frames": []}
            threads.append(current)
            continue
        frame = _FRAME.match(line)
        if frame and current is not None and len(current["frames"]) < MAX_FRAMES:
            current["frames"].append({"func": _cut(frame.group("func")), "file": _cut(frame.group("file")),
                                      "line": int(frame.group("line"))})
    return threads[:MAX_THREADS]


def _faulthandler_dumps(
    procs: list[psutil.Process], out: Path, deadline: float, names: dict[int, int] | None = None
) -> dict[int, list[dict[str, Any]]]:
    """Ask each process for a faulthandler dump (``SIGUSR1``) and read what arrives before ``deadline``.

    A process writes ``out/stacks/<its own pid>.txt``: ``names`` maps a host pid to that pid where they differ.
    """
    if not hasattr(signal, "SIGUSR1"):
        return {}
    files = {proc.pid: out / "stacks" / f"{(names or {}).get(proc.pid, proc.pid)}.txt" for proc in procs}
    sizes: dict[int, int] = {}
    for proc in procs:
        path = files[proc.pid]
        try:
            sizes[proc.pid] = path.stat().st_size
        except OSError:
            sizes[proc.pid] = 0
        with contextlib.suppress(psutil.Error, OSError, ValueError):
            proc.send_signal(signal.SIGUSR1)
    found: dict[int, list[dict[str, Any]]] = {}
    last_size: dict[int, int] = {}
    while True:
        for pid, before in sizes.items():
            if pid in found:
                continue
            path = files[pid]
            try:
                size = path.stat().st_size
            except OSError:
                continue
            # a dump is complete once the file stops growing between two looks
            if size > before and last_size.get(pid) == size:
                with open(path, "rb") as handle:
                    handle.seek(max(before, size - 256 * 1024))
                    text = handle.read().decode("utf-8", "replace")
                threads = parse_faulthandler_text(text)
                if threads:
                    found[pid] = threads
            last_size[pid] = size
        if len(found) == len(sizes) or time.monotonic() >= deadline:
            return found
        time.sleep(0.03)


def collect(
    procs: list[psutil.Process],
    out: Path,
    *,
    budget: float = TOTAL_BUDGET,
    py_spy: str | None = None,
    use_py_spy: bool = True,
    names: dict[int, int] | None = None,
) -> dict[int, str]:
    """Stacks of ``procs`` (pid -> JSON document, see the module docs), within about ``budget`` seconds.

    ``names``: the pid each process knows itself by, where it is not the host's (a PID namespace).
    """
    started = time.monotonic()
    deadline = started + budget
    base = out.parent
    executable = (py_spy or find_py_spy()) if use_py_spy else None
    docs: dict[int, dict[str, Any]] = {}
    cpu_before: dict[int, tuple[float | None, dict[int, float]]] = {}
    for proc in procs:
        info: dict[str, Any] = {"pid": proc.pid, "via": None, "error": None, "notes": [],
                                "work_dir": str(base / "work"), "support_dir": str(base / "support"), "threads": []}
        try:
            with proc.oneshot():
                info["ppid"] = proc.ppid()
                info["name"] = _cut(proc.name())
                info["status"] = proc.status()
        except (psutil.Error, OSError):
            pass
        docs[proc.pid] = info
        cpu_before[proc.pid] = _cpu(proc)
    by_pid = {p.pid: p for p in procs}

    if executable is not None and procs:
        def dump(pid: int) -> tuple[int, list[dict[str, Any]] | None, str | None, float]:
            threads, error, took = _py_spy(executable, pid, min(PY_SPY_TIMEOUT, deadline - time.monotonic()))
            if threads is not None:
                for thread in threads:
                    if type(thread["id"]) is int:
                        thread["wchan"] = _wchan(pid, thread["id"])
            return pid, threads, error, took

        with ThreadPoolExecutor(max_workers=min(8, len(procs))) as pool:
            for pid, threads, error, took in pool.map(dump, list(by_pid)):
                docs[pid]["py_spy_seconds"] = round(took, 3)
                if threads is not None:
                    docs[pid]["via"] = "py-spy"
                    docs[pid]["threads"] = threads
                else:
                    docs[pid]["notes"].append(error or "py-spy failed")
    elif use_py_spy:
        for info in docs.values():
            info["notes"].append("py-spy is not installed")

    # the CPU window must be long enough to tell a spinning thread from a waiting one
    wait = started + CPU_WINDOW - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    window = time.monotonic() - started
    for pid, proc in by_pid.items():
        before_total, before_threads = cpu_before[pid]
        after_total, after_threads = _cpu(proc)
        info = docs[pid]
        info["window"] = round(window, 3)
        if before_total is not None and after_total is not None:
            info["cpu"] = round(max(0.0, after_total - before_total), 3)
        for thread in info["threads"]:
            tid = thread.get("id")
            if type(tid) is int and tid in before_threads and tid in after_threads:
                thread["cpu"] = round(max(0.0, after_threads[tid] - before_threads[tid]), 3)
        if info["via"] is None and "status" in info:
            info["main_wchan"] = _wchan(pid, pid)

    missing = [by_pid[pid] for pid, info in docs.items() if info["via"] is None]
    if missing:
        dumps = _faulthandler_dumps(missing, out, min(deadline, time.monotonic() + FAULTHANDLER_WAIT), names)
        for proc in missing:
            info = docs[proc.pid]
            if proc.pid in dumps:
                info["via"] = "faulthandler"
                info["threads"] = dumps[proc.pid]
            else:
                info["error"] = "; ".join(info["notes"] + ["no faulthandler dump arrived (the process may not run "
                                                            "Python, or its code replaced the grader's handler)"])
    return {pid: json.dumps(info) for pid, info in docs.items()}
