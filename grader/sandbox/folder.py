"""The sandbox's folder: what goes into it, and who may read and write what.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
A sandbox's folder holds ``work/`` (a copy of the submission, :func:`copy_submission`),
``support/`` (``grader_boot.py`` and the ``grader_inside`` package with its bytecode, read or
compiled once per process: :func:`copy_support`), a private ``tmp/``, ``root/`` (where the launcher builds the private
file system view) and ``out/`` (what the run writes); :func:`set_permissions` gives the
student's folders to the sandbox's uid and keeps the support code read-only.
"""

from __future__ import annotations

import importlib.util
import marshal
import os
import py_compile
import shutil
import sys
import tempfile
import threading
import types
from pathlib import Path

GRADER_DIR = Path(__file__).resolve().parent.parent
INSIDE_DIR = GRADER_DIR / "inside"
SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".venv", "venv", "node_modules", ".mypy_cache", ".pytest_cache"}
MAX_SUBMISSION_BYTES = 20 * 1024 * 1024
MAX_SUBMISSION_FILES = 2000


class SubmissionTooLarge(ValueError):
    """The submission folder is too big to copy into a sandbox."""


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


_BYTECODE: dict[str, bytes] | None = None
_BYTECODE_LOCK = threading.Lock()
_TIMESTAMP, _HASHED, _CHECKED = 0, 0b01, 0b11
"""Flags of a ``.pyc`` header (PEP 552): checked against the source's modification time, or against its hash."""


def inside_bytecode() -> dict[str, bytes]:
    """``grader.inside`` compiled once per process: file name in ``__pycache__`` -> ``.pyc`` bytes.

    Every interpreter of a sandbox (its first process and each ``spawn``
    child) imports these modules, and the sandbox runs with
    ``PYTHONDONTWRITEBYTECODE``: without bytecode beside them each one would
    compile them again. Hash-checked ``.pyc`` files (PEP 552) stay valid
    whatever the copies' modification times, and a changed source is
    recompiled rather than trusted. A module's bytecode is taken from where
    this process's own imports keep it (the install's ``__pycache__``, or
    ``PYTHONPYCACHEPREFIX``) when it was compiled from the same source
    (:func:`_installed`); otherwise the module is compiled and, unless this
    process writes no bytecode, left there for the next grading, as an import
    would. Empty where compiling is not possible.
    """
    global _BYTECODE
    with _BYTECODE_LOCK:
        if _BYTECODE is None:
            found: dict[str, bytes] = {}
            tag = sys.implementation.cache_tag
            if tag is not None:
                with tempfile.TemporaryDirectory(prefix="grader-pyc-") as tmp:
                    for source in sorted(INSIDE_DIR.glob("*.py")):
                        if source.name == "boot.py":
                            continue
                        name = f"{source.stem}.{tag}.pyc"
                        compiled = _installed(source) or _compiled(source, Path(tmp) / name)
                        if compiled is not None:
                            found[name] = compiled
            _BYTECODE = found
        return _BYTECODE


def _cached(source: Path) -> Path:
    """Where this process's imports keep the bytecode of ``source`` (not optimized: the sandbox runs without ``-O``)."""
    return Path(importlib.util.cache_from_source(str(source), optimization=""))


def _installed(source: Path) -> bytes | None:
    """The install's bytecode of ``source`` as a hash-checked ``.pyc``, where it is this Python's and was compiled
    from the source as it is now (by its hash, or by its modification time and size as the interpreter checks them);
    ``None`` otherwise, or when its code cannot be read. Reading it costs a small part of compiling the module
    again."""
    try:
        data = source.read_bytes()
        pyc = _cached(source).read_bytes()
        stat = source.stat()
    except (OSError, ValueError, NotImplementedError):
        return None
    if len(pyc) < 16 or pyc[:4] != importlib.util.MAGIC_NUMBER:
        return None
    flags, digest = int.from_bytes(pyc[4:8], "little"), importlib.util.source_hash(data)
    if flags in (_HASHED, _CHECKED):
        fresh = pyc[8:16] == digest
    elif flags == _TIMESTAMP:
        fresh = pyc[8:16] == _stamp(int(stat.st_mtime)) + _stamp(stat.st_size)
    else:
        fresh = False
    if not fresh or not _loads(pyc[16:]):
        return None
    return importlib.util.MAGIC_NUMBER + _stamp(_CHECKED) + digest + pyc[16:]


def _loads(body: bytes) -> bool:
    """Whether ``body`` unmarshals to a code object (a damaged file would fail every sandbox's import instead)."""
    try:
        return isinstance(marshal.loads(body), types.CodeType)
    except (ValueError, EOFError, TypeError):
        return False


def _stamp(value: int) -> bytes:
    return (value & 0xFFFFFFFF).to_bytes(4, "little")


def _compiled(source: Path, scratch: Path) -> bytes | None:
    """``source`` compiled to a hash-checked ``.pyc``, its bytes; ``None`` where it cannot be.

    Written where this process's imports keep bytecode, unless it writes none or cannot write there
    (then to ``scratch``, a temporary file).
    """
    for where in ("scratch",) if sys.dont_write_bytecode else ("cache", "scratch"):
        try:
            target = scratch if where == "scratch" else _cached(source)
            py_compile.compile(
                str(source), cfile=str(target), doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
            return target.read_bytes()
        except py_compile.PyCompileError:
            return None
        except (OSError, ValueError, NotImplementedError):
            continue
    return None


def _copy_bytecode(package: Path) -> None:
    """Put the compiled ``grader.inside`` beside its copy in a sandbox (the same Python reads it)."""
    compiled = inside_bytecode()
    if not compiled:
        return
    cache = package / "__pycache__"
    cache.mkdir(exist_ok=True)
    for name, data in compiled.items():
        (cache / name).write_bytes(data)


def copy_support(support: Path, modules: dict[str, Path]) -> None:
    """Put the in-sandbox support code in ``support``: ``grader_inside`` (with its bytecode),
    ``grader_boot.py``, and each of ``modules`` (name -> file) as ``<name>.py``."""
    shutil.copytree(INSIDE_DIR, support / "grader_inside", ignore=shutil.ignore_patterns("__pycache__", "boot.py"))
    _copy_bytecode(support / "grader_inside")
    shutil.copyfile(INSIDE_DIR / "boot.py", support / "grader_boot.py")
    for name, path in modules.items():
        shutil.copyfile(path, support / f"{name}.py")


def set_permissions(base: Path, work: Path, support: Path, out: Path, uid: int | None) -> None:
    """Support code readable by all, the student's folders owned by the sandbox uid ``uid`` (root)."""
    if os.name != "posix":
        return
    os.chmod(base, 0o711)
    for root, _dirs, files in os.walk(support):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)
    os.chmod(out / "scenario.json", 0o644)
    if uid is None:
        return
    for folder in (work, base / "tmp", out, out / "stacks"):
        for root, _dirs, files in os.walk(folder):
            os.chown(root, uid, uid)
            os.chmod(root, 0o700)
            for name in files:
                if root == str(out) and name == "scenario.json":
                    continue
                os.chown(os.path.join(root, name), uid, uid)
