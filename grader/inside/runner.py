"""The first process of a sandbox: import the student's module, run one action, report.

Runs on the untrusted side (imports nothing of the trusted ``grader`` package).
The scenario is read from ``scenario.json`` in the sandbox's output folder; the
result is written to ``result.json`` there as plain wire data, then the process
ends with ``os._exit`` so that nothing the student left behind (non-daemon
threads, unjoined children) can keep it alive: the trusted side records and
kills what is left.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import traceback

from . import events, probes, wire

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

MESSAGE_LIMIT = 2000


def _safe_str(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # a student's __str__ may raise anything
        text = "<message could not be shown>"
    if not isinstance(text, str):
        text = "<message could not be shown>"
    return text[:MESSAGE_LIMIT]


def describe(exc: BaseException, work_dir: str) -> dict[str, Any]:
    """Plain description of an exception: type, message, frames, syntax details."""
    frames = []
    for frame in traceback.extract_tb(exc.__traceback__)[-30:]:
        filename = frame.filename or "?"
        frames.append(
            {
                "file": filename,
                "line": frame.lineno,
                "func": frame.name,
                "source": (frame.line or "")[:300],
                "student": os.path.abspath(filename).startswith(work_dir + os.sep),
            }
        )
    info: dict[str, Any] = {
        "type": type(exc).__name__,
        "module": type(exc).__module__,
        "message": _safe_str(exc),
        "frames": frames,
    }
    if isinstance(exc, SyntaxError):
        info["syntax"] = {
            "file": os.path.basename(exc.filename or "?"),
            "line": exc.lineno,
            "offset": exc.offset,
            "text": (exc.text or "").rstrip("\n")[:300],
            "msg": exc.msg,
        }
    return info


def _apply_limits(limits: dict[str, Any]) -> list[str]:
    applied: list[str] = []
    try:
        import resource
    except ImportError:
        return applied
    table = {
        "memory": "RLIMIT_AS",
        "cpu_seconds": "RLIMIT_CPU",
        "file_size": "RLIMIT_FSIZE",
        "open_files": "RLIMIT_NOFILE",
        "processes": "RLIMIT_NPROC",
    }
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
            pass
    return applied


def _os_children() -> list[int]:
    pids: list[int] = []
    task_dir = f"/proc/{os.getpid()}/task"
    try:
        tasks = os.listdir(task_dir)
    except OSError:
        return pids
    for task in tasks:
        try:
            with open(f"{task_dir}/{task}/children") as handle:
                pids.extend(int(p) for p in handle.read().split())
        except (OSError, ValueError):
            continue
    return sorted(set(pids))


def _after_state() -> dict[str, Any]:
    import multiprocessing

    threads = [
        {"name": t.name, "ident": t.ident, "daemon": t.daemon}
        for t in threading.enumerate()
        if t is not threading.main_thread() and t.is_alive()
    ]
    children = []
    for child in list(getattr(multiprocessing.process, "_children", ())):
        try:
            alive = child._popen is not None and child._popen.poll() is None
        except (OSError, ValueError, AttributeError):
            alive = False
        children.append({"pid": child.pid, "name": child.name, "alive": alive})
    return {"threads": threads, "mp_children": children, "os_children": _os_children()}


def _write_result(out_dir: str, result: dict[str, Any]) -> None:
    path = os.path.join(out_dir, "result.json")
    tmp = path + ".tmp"
    try:
        data = json.dumps(result, ensure_ascii=True)
    except (TypeError, ValueError) as exc:
        data = json.dumps({"internal_error": f"result could not be encoded: {exc}"})
    with open(tmp, "w", encoding="ascii") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _finish(out_dir: str, result: dict[str, Any]) -> None:
    probes.finish()
    _write_result(out_dir, result)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(0)


def _target(action: dict[str, Any], module: Any) -> tuple[Any, list[Any], BaseException | None]:
    """The function an action calls, its first arguments, and what importing ``drivers.py`` raised (if it did)."""
    if action.get("kind") == "call":
        return getattr(module, action["func"], None), [], None
    try:
        drivers = _import_support(action["driver_module"])
    except BaseException as exc:
        return None, [], exc
    return getattr(drivers, action["func"], None), [module], None


def _import_support(name: str) -> Any:
    """The module ``name`` of the sandbox's support folder (the assignment's drivers), never one of the student's.

    By now the student's module has run, with its folder first on ``sys.path``: it may have written a file
    of that name there, or put a module under that name in ``sys.modules``. Either would make the student's
    code the driver whose results the checks read.
    """
    sys.modules.pop(name, None)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        return importlib.import_module(name)
    finally:
        del sys.path[0]


def main(out_dir: str) -> None:
    with open(os.path.join(out_dir, "scenario.json"), encoding="utf-8") as handle:
        scenario = json.load(handle)
    work_dir = os.path.abspath(scenario["work_dir"])
    applied = _apply_limits(scenario.get("limits", {}))
    start_method = scenario.get("start_method")
    if start_method:
        import multiprocessing

        multiprocessing.set_start_method(start_method, force=True)
    if work_dir not in sys.path:
        sys.path.insert(0, work_dir)
    probes.install(scenario, out_dir, "main")
    result: dict[str, Any] = {"limits": applied, "pid": os.getpid()}
    action = scenario.get("action", {"kind": "import"})

    probes.record(events.PHASE, name=events.PHASE_IMPORT)
    t0 = probes._monotonic()
    try:
        module = importlib.import_module(scenario["module"])
    except BaseException as exc:
        result["import"] = {"ok": False, "error": describe(exc, work_dir), "duration": probes._monotonic() - t0}
        result["after"] = _after_state()
        _finish(out_dir, result)
        return
    result["import"] = {"ok": True, "duration": probes._monotonic() - t0}
    probes.flush_output()  # a line the import left unfinished counts as printed by the import
    probes.record(events.PHASE, name=events.PHASE_IMPORTED)

    kind = action.get("kind")
    if kind in ("call", "driver"):
        func, call_args, driver_error = _target(action, module)
        if driver_error is not None:  # the assignment's drivers.py is broken: the trusted side says so
            result["call"] = {"ok": False, "driver_error": describe(driver_error, work_dir)}
        elif func is None or not callable(func):
            result["call"] = {"ok": False, "missing": action["func"], "kind": kind}
        else:
            call_args.extend(wire.decode(action.get("args", [])))
            kwargs = wire.decode(action.get("kwargs", {"$dict": []}))
            probes.record(events.PHASE, name=events.PHASE_CALL, func=action["func"])
            t1 = probes._monotonic()
            try:
                value = func(*call_args, **kwargs)
            except BaseException as exc:
                result["call"] = {"ok": False, "error": describe(exc, work_dir), "duration": probes._monotonic() - t1}
            else:
                duration = probes._monotonic() - t1
                probes.record(events.PHASE, name=events.PHASE_RETURN, func=action["func"])
                result["call"] = {"ok": True, "value": wire.encode(value), "duration": duration}
    result["after"] = _after_state()
    _finish(out_dir, result)
