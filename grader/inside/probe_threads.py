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
"""

from __future__ import annotations

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
