"""Probes for thread lifetimes and for what a process's module globals held when it ended.

Runs on the *untrusted* side, like :mod:`probes` (imports nothing of the trusted
``grader`` package). Importing this module registers two probes in
``probes.PROBES``:

- ``thread_lifetimes``: every ``threading.Thread`` records ``th_begin`` from
  inside itself, before its ``run()`` (``ident``, ``name``), and ``th_end``
  after it. Recorded by the thread itself, so the begin event always comes
  before anything the thread prints or calls: a line or traced call of thread
  ident ``X`` at time ``t`` belongs to the latest thread that began with ident
  ``X`` before ``t``, even when the system reuses idents of finished threads.
- ``module_globals``: when a ``multiprocessing`` child process ends (normally
  or by an exception in its target), it records ``globals`` with the plain
  scalar globals of the student's module as that child saw them (for example
  a counter the child changed, which its parent never sees). Works for
  ``spawn``, ``forkserver`` and ``fork`` children alike.

And, in every process of every run (``probes.install`` calls
:func:`install_thread_errors`), a thread that dies of an exception records
``th_error`` before Python reports it as usual: a thread that dies never does
the rest of its work, and the diagnosis of a run that then gets stuck names it.
"""

from __future__ import annotations

import os
import sys
import threading

from . import events, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

SCALARS = (bool, int, float, str, type(None))


class _AfterFork:
    """The (weak-referenceable) owner of the after-fork hook of ``module_globals``."""


_AFTER_FORK = _AfterFork()


_work_dir = ""
"""The student's folder (absolute), once installed: frames of files in it are the student's."""


def install_thread_errors(scenario: dict[str, Any]) -> None:
    """Record every thread that ends with an exception (``th_error``), then let Python report it as usual."""
    global _work_dir
    work_dir = scenario.get("work_dir")
    _work_dir = os.path.abspath(work_dir) if isinstance(work_dir, str) and work_dir else ""
    original = threading.excepthook
    if getattr(original, "_grader_probe", False):
        return

    def excepthook(args: Any) -> None:
        try:
            _record_thread_error(args)
        except Exception:  # noqa: BLE001 - evidence is best effort; Python's own report still follows
            pass
        original(args)

    excepthook._grader_probe = True  # type: ignore[attr-defined]
    threading.excepthook = excepthook


def _record_thread_error(args: Any) -> None:
    file, line, func = "", 0, ""
    tb = args.exc_traceback
    for _ in range(200):  # the innermost frame of the student's code
        if tb is None:
            break
        code = tb.tb_frame.f_code
        path = os.path.abspath(code.co_filename) if code.co_filename else ""
        if _work_dir and path.startswith(_work_dir + os.sep):
            file, line, func = path, tb.tb_lineno, getattr(code, "co_qualname", code.co_name)
        tb = tb.tb_next
    try:
        message = str(args.exc_value)[:200]
    except Exception:  # noqa: BLE001 - a __str__ of the student's that fails
        message = ""
    thread = args.thread
    probes.record(events.TH_ERROR, ident=getattr(thread, "ident", None), name=str(getattr(thread, "name", ""))[:100],
                  error=getattr(args.exc_type, "__name__", "?")[:100], message=message, file=file, line=line, func=func)


def install_thread_lifetimes(scenario: dict[str, Any]) -> None:
    cls = threading.Thread
    original = getattr(cls, "_bootstrap_inner", None)
    if original is None or getattr(original, "_grader_probe", False):
        return

    def _bootstrap_inner(self: threading.Thread) -> None:
        probes.record(events.TH_BEGIN, ident=probes._get_ident(), name=self.name)
        try:
            original(self)
        finally:
            probes.record(events.TH_END, ident=probes._get_ident(), name=self.name)

    _bootstrap_inner._grader_probe = True  # type: ignore[attr-defined]
    cls._bootstrap_inner = _bootstrap_inner  # type: ignore[attr-defined]


def module_scalars(module: Any) -> dict[str, Any]:
    """The module's public globals that are plain scalars (long strings cut)."""
    out: dict[str, Any] = {}
    for name, value in list(vars(module).items()):
        if name.startswith("_") or type(value) not in SCALARS:
            continue
        out[name] = value[:200] if isinstance(value, str) else value
        if len(out) >= 50:
            break
    return out


def install_module_globals(scenario: dict[str, Any]) -> None:
    from multiprocessing import util

    name = scenario["module"]

    def report() -> None:
        module = sys.modules.get(name)
        if module is not None:
            probes.record(events.GLOBALS, module=name, values=module_scalars(module))

    def arm(_: Any = None) -> None:
        # Finalizers with an exit priority run when a multiprocessing child ends, after its target.
        util.Finalize(None, report, exitpriority=100)

    arm()
    # A forked child starts with no finalizers; the after-fork hooks arm it again.
    util.register_after_fork(_AFTER_FORK, arm)


probes.PROBES[events.PROBE_THREAD_LIFETIMES] = install_thread_lifetimes
probes.PROBES[events.PROBE_MODULE_GLOBALS] = install_module_globals
