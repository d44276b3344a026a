"""Boot script of a sandbox, copied into it as ``grader_boot.py``.

It is the ``__main__`` of the sandbox's first process and, because ``spawn``
children re-run their parent's main script as ``__mp_main__``, also runs at
the start of every child the student's code starts. That is how the evidence
probes reach every process: the first process runs the scenario, children only
install the probes and then go on with what ``multiprocessing`` asked of them.
"""

import json
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: every interpreter of a sandbox runs this script
    from types import ModuleType
    from typing import Any


def _site_builtins() -> None:
    """``exit()``, ``quit()``, ``help()``, ``copyright``... as in any interpreter.

    Sandboxes start Python with ``-S`` (and ``spawn`` children inherit it): no ``site-packages`` and no
    ``.pth`` files, which the student's code does not need and which can cost more than the rest of an
    interpreter's start-up. Only ``site``'s additions to the builtins are put back.
    """
    if not sys.flags.no_site:
        return
    import site

    for name in ("setquit", "setcopyright", "sethelper"):
        setter = getattr(site, name, None)
        if setter is not None:
            setter()


PRIVATE_SHM_ENV = "GRADER_PRIVATE_SHM"
"""Set by the sandbox's launcher when this process tree has a ``/dev/shm`` of its own."""


def _no_resource_tracker() -> None:
    """Keep ``multiprocessing`` from starting its resource tracker where it has nothing to clean.

    The tracker is one more interpreter per run, started with the first ``spawn`` child or the first
    named semaphore (a ``Lock``, a ``Value``, a ``Queue``), only to unlink the semaphores and shared
    memory a killed process leaves in ``/dev/shm``. Where the launcher gave the tree a ``/dev/shm`` of
    its own, that goes away with the sandbox anyway: the tracker is told it is already running, on
    ``/dev/null``, and the children inherit that. Elsewhere it runs as usual.
    """
    if os.environ.get(PRIVATE_SHM_ENV) != "1":
        return
    try:
        from multiprocessing import resource_tracker

        tracker = resource_tracker._resource_tracker
        if getattr(tracker, "_fd", None) is None:
            tracker._fd = os.open(os.devnull, os.O_WRONLY)  # type: ignore[attr-defined]
            tracker._pid = None  # type: ignore[attr-defined]
    except (ImportError, AttributeError, OSError):
        pass


def _support_modules() -> "tuple[ModuleType, ModuleType]":
    """``grader_inside.guard`` and ``grader_inside.probes``, from this script's own folder whatever ``sys.path`` says.

    A ``spawn`` child starts with its parent's ``sys.path``, where the student's folder comes first. A
    ``grader_inside`` package that the student's code wrote there would otherwise be imported in the
    child in place of the grader's, before any guard exists. The package's own modules then come from
    its ``__path__``, this folder.
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from grader_inside import guard, probes

        if __name__ == "__main__":
            from grader_inside import zygote  # noqa: F401 - the first process's spawn children come from it
    finally:
        del sys.path[0]
    return guard, probes


NO_WORKING_FOLDER = "import sys; sys.path[:1] == [''] and sys.path.pop(0); "
"""First in the program of every interpreter ``multiprocessing`` starts (:func:`_children_import_nothing_from_their_folder`)."""
BEFORE_PARENT_PATH = "import json, pkgutil, site; "
"""Then in the program of a ``spawn`` child or a forkserver: they take their parent's ``sys.path`` before this script."""
RUNS_THIS_SCRIPT = ("from multiprocessing.spawn import", "from multiprocessing.forkserver import")


def _children_import_nothing_from_their_folder() -> None:
    """Keep the interpreters ``multiprocessing`` starts from importing, before their guard, a module of the student's folder.

    ``multiprocessing`` starts each ``spawn`` child, its forkserver and its resource tracker as
    ``python -c PROGRAM`` in the student's folder (``util.spawnv_passfds``). A ``spawn`` child (or the
    forkserver) runs this script only once the program has set its ``sys.path`` to its parent's, the
    student's folder first. Two windows would let a module the student's code wrote there
    (``multiprocessing.py``, ``pkgutil.py``, ``json.py``...) run in that interpreter before the guard
    (the resource tracker never has one):

    - ``-c`` puts the working folder (``''``) first for the program's own imports. From Python 3.11 the
      sandbox's ``PYTHONSAFEPATH`` keeps it off (``-P``, which every child inherits); on 3.10 the program
      drops it first (:data:`NO_WORKING_FOLDER`);
    - between the parent's ``sys.path`` and the guard, ``runpy`` imports ``pkgutil`` (and with it
      ``typing``), and this script ``json`` (and ``site``, where nothing loaded it yet). The program
      imports them first, from the standard library (:data:`BEFORE_PARENT_PATH`): later imports find
      them loaded.

    Applied in every process of the sandbox, for the children's children. Undoing it means replacing
    part of ``multiprocessing``, which the static scan flags.
    """
    try:
        from multiprocessing import util
    except ImportError:
        return
    original = util.spawnv_passfds
    if getattr(original, "_grader_prelude", False):
        return

    def spawnv_passfds(path: "Any", args: "Any", passfds: "Any") -> int:
        args = list(args)
        at = args.index("-c") + 1 if "-c" in args[:-1] else 0
        if at and isinstance(args[at], str):
            before = BEFORE_PARENT_PATH if args[at].startswith(RUNS_THIS_SCRIPT) else ""
            args[at] = NO_WORKING_FOLDER + before + args[at]
        zygote = sys.modules.get("grader_inside.zygote")
        pid = zygote.request(path, args, passfds) if zygote is not None else None
        return original(path, args, passfds) if pid is None else pid

    spawnv_passfds._grader_prelude = True  # type: ignore[attr-defined]
    util.spawnv_passfds = spawnv_passfds


def _boot() -> None:
    out_dir = os.environ.get("GRADER_SANDBOX_OUT")
    if not out_dir:
        return
    _site_builtins()
    try:
        with open(os.path.join(out_dir, "scenario.json"), encoding="utf-8") as handle:
            scenario = json.load(handle)
    except (OSError, ValueError):
        return
    guard, probes = _support_modules()
    if __name__ == "__main__":
        from grader_inside import runner  # noqa: F401 - with what it imports, before the guard

        probes.preload(scenario)
        if scenario.get("spawn_server") and scenario.get("action", {}).get("kind") in ("call", "driver"):
            sys.modules["grader_inside.zygote"].start(os.path.dirname(os.path.abspath(__file__)))
        _no_resource_tracker()

    # First of all: the audit hook that keeps the student's code away from the evidence and the probes.
    if scenario.get("audit_hook", True):
        guard.install(scenario["work_dir"], os.path.dirname(os.path.abspath(__file__)), out_dir, probes.record)
    _children_import_nothing_from_their_folder()
    if __name__ == "__main__":
        from grader_inside import runner

        runner.main(out_dir)
        return
    work_dir = os.path.abspath(scenario["work_dir"])
    if work_dir not in sys.path:
        sys.path.insert(0, work_dir)
    probes.install(scenario, out_dir, "child")


_CLONE = None
try:
    _boot()
except BaseException as _raised:
    if type(_raised).__module__ != "grader_inside.zygote":
        raise
    _CLONE = _raised  # a spawn child the zygote cloned: it runs its program here, outside this handler
if _CLONE is not None:
    _code, _namespace = _CLONE.code, _CLONE.namespace  # type: ignore[attr-defined]
    _CLONE = None
    _leave = sys.modules["grader_inside.zygote"].leave  # bound before the student's code runs
    try:
        exec(_code, _namespace)
    except SystemExit as _exit:
        _leave(_exit.code)  # as the interpreter would end, without freeing what the zygote shares (never returns)
