"""The sandbox uids' lock folder: who may lease a uid, and which uid is free (root only).

Imports nothing of grader, so the controller (``grader check``, ``grader grade``) can ask before
grading whether a sandbox uid could be leased, and fail closed (:class:`LeaseRefused`) without
loading the sandbox host; :func:`grader.sandbox.containment.lease_uid` leases through it.
"""

from __future__ import annotations

import contextlib
import os
import random
import stat
from pathlib import Path

UID_BASE = 60000
UID_COUNT = 2000
# machine-wide (never under $TMPDIR, which differs between graders): /run is root's
UID_LOCK_DIR = Path("/run/grader-sandbox-uids" if os.access("/run", os.W_OK) else "/tmp/grader-sandbox-uids")
UNSAFE_NOTE = (
    "graded with --unsafe-no-sandbox: where the sandbox could not drop to a uid of its own, "
    "student code ran as root with every capability"
)


class LeaseRefused(Exception):
    """As root, no sandbox uid can be leased: the lock folder is not root's and private, or every uid is taken."""


def uid_lock_dir() -> Path:
    """The folder of the uid leases' lock files (``GRADER_TEST_UID_LOCK_DIR`` overrides it, for the tests only)."""
    override = os.environ.get("GRADER_TEST_UID_LOCK_DIR")
    return Path(override) if override else UID_LOCK_DIR


def open_lock_dir(lock_dir: Path) -> int:
    """A descriptor of ``lock_dir`` (made if missing), which must be a folder, not a link, root's and private."""
    with contextlib.suppress(FileExistsError):
        lock_dir.mkdir(mode=0o700)
    try:
        fd = os.open(lock_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        kind = "a symbolic link" if os.path.islink(lock_dir) else f"not an openable folder ({exc.strerror})"
        raise LeaseRefused(f"the uid lock folder {lock_dir} is {kind}") from None
    info = os.fstat(fd)
    problem = None
    if info.st_uid != 0:
        problem = f"belongs to uid {info.st_uid}, not root"
    elif info.st_mode & 0o077:
        problem = f"is open to other users (mode {stat.S_IMODE(info.st_mode):04o})"
    if problem:
        os.close(fd)
        raise LeaseRefused(f"the uid lock folder {lock_dir} {problem}; it must be root's with mode 0700")
    return fd


def _known(uid: int) -> bool:
    """Whether ``uid`` is a user or group of the user database (never leased)."""
    import grp
    import pwd

    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            continue
    return False


def lock_free_uid(base: int = UID_BASE, count: int = UID_COUNT, lock_dir: Path | None = None) -> tuple[int, int]:
    """A uid of ``base .. base + count - 1`` no one holds, and the descriptor of its held ``flock``.

    :class:`LeaseRefused` if ``lock_dir`` (default :func:`uid_lock_dir`) is not root's and private
    or every uid is taken.
    """
    import fcntl

    dir_fd = open_lock_dir(lock_dir if lock_dir is not None else uid_lock_dir())
    try:
        start = random.randrange(count)
        for i in range(count):
            uid = base + (start + i) % count
            if _known(uid):
                continue
            try:
                fd = os.open(f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            return uid, fd
    finally:
        os.close(dir_fd)
    raise LeaseRefused(f"all {count} sandbox uids ({base}-{base + count - 1}) are taken or in the user database")


def sandbox_refusal() -> str | None:
    """Why, as root, no sandbox uid could be leased now (``None``: one could, or this is not root on Linux)."""
    import sys

    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    try:
        _, fd = lock_free_uid()
    except LeaseRefused as exc:
        return str(exc)
    os.close(fd)
    return None
