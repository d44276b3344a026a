"""The evidence of a sandbox run, for assignment authors. Runs in the pytest process.

:class:`Run` is what ``submission.call(...)``, ``drive(...)`` and
``import_module()`` return: how the run ended and what it recorded, as typed
records (:class:`Line`, :class:`Call`, :class:`ChildProcess`,
:class:`ChildThread`, :class:`ThreadRun`, :class:`StudentError`). The topic
modules read the events of the extra probes; each mirrors the probe module of
:mod:`grader.inside` that records them:

- :mod:`grader.evidence.locks` (``probes=["locks"]`` / ``["race"]``, ``watch=``): lockset analysis,
  ``threading`` and ``multiprocessing`` locks, lock acquisitions;
- :mod:`grader.evidence.lockorder` (``probes=["locks"]``): the lock-order graph and the cycles that could close;
- :mod:`grader.evidence.waiting` (``probes=["locks"]``): recorded waits, blocked or spinning;
- :mod:`grader.evidence.pools` (``probes=["pools"]``): pools and the grader's pool task;
- :mod:`grader.evidence.futures` (``probes=["futures"]``): ``concurrent.futures`` executors and their tasks;
- :mod:`grader.evidence.pipes` (``probes=["pipe_ops"]``): send/recv on pipe connections.

:class:`Opaque` is how a value the sandbox could not pass as plain data comes
back (it equals nothing); checks import it from here, never from
``grader.inside``.
"""

from grader.evidence.run import (
    Call,
    ChildProcess,
    ChildThread,
    Ending,
    Line,
    Run,
    StudentError,
    ThreadRun,
    max_overlap,
)
from grader.inside.wire import Opaque

__all__ = [
    "Call",
    "ChildProcess",
    "ChildThread",
    "Ending",
    "Line",
    "Opaque",
    "Run",
    "StudentError",
    "ThreadRun",
    "max_overlap",
]
