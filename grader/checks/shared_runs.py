"""Runs that checks share, made once for all the check workers of one grading.

Runs in the pytest processes of one grading. With ``--check-workers K`` (pytest-xdist), each worker
is a process of its own, and :meth:`grader.checks.Submission.shared_call` alone would make a shared
run once *per worker* that gets one of the checks sharing it. The controller therefore makes a
private folder for the grading (mode 0700, removed at its end) and a random key, and hands both to
its workers (:func:`grader.plugin.pytest_configure_node`). A worker that needs a shared run takes a
lock on the run's key in that folder (``flock``): the first one makes the run and leaves it there,
pickled and signed with the key (HMAC-SHA256); the others wait for the lock and take the same run.

What is read back is trusted only when its signature holds: the key never leaves the trusted
processes (it travels on xdist's channel, not in the environment or a file), so a file that a
student's process could have written or replaced is never unpickled; it is made again instead. A
worker that dies while making a run releases its lock with its death, and the next one makes the run
itself. The wait is under the held alarm of a sandbox run (:class:`grader.sandbox.sandbox.HeldAlarm`):
a check waiting for another worker's run is cut by its own time limit no sooner than one making it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from grader.evidence.run import Run
from grader.exporters.files import write_atomic
from grader.sandbox.sandbox import HeldAlarm

FOLDER_KEY = "grader_shared_runs"
"""Key of ``workerinput`` naming the folder of the shared runs."""
SECRET_KEY = "grader_shared_runs_key"
"""Key of ``workerinput`` holding the signing key, as hex."""
_SIGNATURE = hashlib.sha256().digest_size


class WorkerShare:
    """The shared runs of one grading's check workers: a private folder and the key that signs them."""

    def __init__(self, folder: Path, key: bytes) -> None:
        self.folder = folder
        self.key = key

    @classmethod
    def create(cls) -> WorkerShare:
        """A new folder only this user can enter, and a new random key (the controller's side)."""
        return cls(Path(tempfile.mkdtemp(prefix="grader-shared-runs-")), secrets.token_bytes(32))

    def workerinput(self) -> dict[str, str]:
        return {FOLDER_KEY: str(self.folder), SECRET_KEY: self.key.hex()}

    @classmethod
    def from_workerinput(cls, workerinput: dict[str, object]) -> WorkerShare | None:
        folder, key = workerinput.get(FOLDER_KEY), workerinput.get(SECRET_KEY)
        if not isinstance(folder, str) or not isinstance(key, str):
            return None
        try:
            return cls(Path(folder), bytes.fromhex(key))
        except ValueError:
            return None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def run_once(self, key: str, make: Callable[[], Run]) -> Run:
        """The run stored under ``key`` by any worker of this grading, or ``make()``'s, stored for the others."""
        try:
            import fcntl
        except ImportError:  # no flock (Windows): each worker makes its own, as before
            return make()
        name = hashlib.sha256(key.encode("utf-8")).hexdigest()
        try:
            lock = os.open(self.folder / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError:  # the folder is gone (the grading is ending): make it here, as without workers
            return make()
        try:
            with HeldAlarm() as held:
                fcntl.flock(lock, fcntl.LOCK_EX)
                stored = self.folder / f"{name}.run"
                run = self._load(stored)
                if run is None:
                    run = make()
                    self._store(stored, run)
                held.drop = run.raw.timed_out
            return run
        finally:
            os.close(lock)  # releases the lock

    def _sign(self, data: bytes) -> bytes:
        return hmac.new(self.key, data, hashlib.sha256).digest()

    def _store(self, path: Path, run: Run) -> None:
        try:
            data = pickle.dumps(run, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
            return  # the others make it themselves
        try:
            write_atomic(path, self._sign(data) + data, mode=0o600)
        except OSError:
            pass

    def _load(self, path: Path) -> Run | None:
        try:
            with open(path, "rb", opener=lambda p, f: os.open(p, f | os.O_NOFOLLOW)) as handle:
                blob = handle.read()
        except OSError:
            return None
        signature, data = blob[:_SIGNATURE], blob[_SIGNATURE:]
        if len(signature) != _SIGNATURE or not hmac.compare_digest(signature, self._sign(data)):
            return None
        run = pickle.loads(data)  # signed by a process of this grading: trusted data
        return run if isinstance(run, Run) else None
