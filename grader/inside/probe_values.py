"""The lockset probe's reads and writes of shared values: ``.value`` of a ``multiprocessing`` ``Value`` and ``RawValue``.

Runs on the untrusted side, in every process of the sandbox, installed by
:func:`grader_inside.probe_locks.install`: each get and set of ``.value`` is
counted there (:func:`grader_inside.probe_locks._note_access`) with the locks
the thread holds, and widened by the ``race`` probe. A synchronized ``Value``'s
own lock, taken by ``.value`` for itself, is not counted as held; a ``RawValue``
is built from a subclass of its ctypes type whose ``.value`` is recorded.
"""

from __future__ import annotations

import importlib

from .probe_locks import _internal, _is_internal, _note_access, _widen_window, lock_key, semlock_of

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any


def _own_lock(sync: Any) -> str | None:
    lock = getattr(sync, "_lock", None)
    if lock is not None and hasattr(lock, "_semlock"):
        try:
            key = lock.__dict__.get("_grader_lock_key")  # set when the lock was made (_install_semlock)
        except Exception:  # a lock of the student's own class: never let the probe change what the program does
            key = None
        return key if isinstance(key, str) else lock_key(lock)
    return None


def _unwatched(sync: Any) -> tuple[Any, Any] | None:
    """For ``.value`` of a synchronized value: its own lock taken at the first try, and its ctypes descriptor.

    What ``.value`` does itself (take the value's own lock, read or write the ctypes
    object, release the lock) is not the student's and is not recorded. When the
    lock is one of ``multiprocessing``'s whose ``acquire`` and ``release`` are still
    the probe's (:func:`grader_inside.probe_locks.semlock_of`), and it is free or
    already this thread's (an ``RLock``), it is taken and released here without
    the probe's wrappers, which would only see that the acquisition is internal.
    ``None`` (nothing taken) otherwise: a busy lock waits through the wrappers, as
    a student's acquisition does, so that the wait is recorded.
    """
    try:
        semlock = semlock_of(sync.acquire, sync.release)
        descriptor = type(sync._obj).__dict__.get("_grader_raw")
    except AttributeError:
        return None
    if semlock is None or descriptor is None or not semlock.acquire(False):
        return None
    return semlock, descriptor


def _install_synchronized() -> None:
    sharedctypes: Any = importlib.import_module("multiprocessing.sharedctypes")

    cls: Any = sharedctypes.Synchronized
    original = cls.value
    if getattr(original.fget, "_grader_probe", False):
        return
    original_get, original_set = original.fget, original.fset

    def get(self: Any) -> Any:
        raw = _unwatched(self)
        if raw is not None:
            semlock, descriptor = raw
            try:
                value = descriptor.__get__(self._obj)
            finally:
                semlock.release()
        else:
            _internal.depth = getattr(_internal, "depth", 0) + 1
            try:
                value = original_get(self)
            finally:
                _internal.depth -= 1
        _note_access(self, "read", value, _own_lock(self))
        _widen_window("read")
        return value

    def set(self: Any, value: Any) -> None:
        _note_access(self, "write", value, _own_lock(self))
        _widen_window("write")
        raw = _unwatched(self)
        if raw is not None:
            semlock, descriptor = raw
            try:
                descriptor.__set__(self._obj, value)
            finally:
                semlock.release()
            return
        _internal.depth = getattr(_internal, "depth", 0) + 1
        try:
            original_set(self, value)
        finally:
            _internal.depth -= 1

    get._grader_probe = True  # type: ignore[attr-defined]
    cls.value = property(get, set, doc=original.__doc__)  # type: ignore[assignment]


def _tracked_value_property(base: Any) -> property:
    descriptor = base.value  # the getset descriptor of _SimpleCData

    def get(self: Any) -> Any:
        value = descriptor.__get__(self, type(self))
        if not _is_internal():
            _note_access(self, "read", value, None)
            _widen_window("read")
        return value

    def set(self: Any, value: Any) -> None:
        if not _is_internal():
            _note_access(self, "write", value, None)
            _widen_window("write")
        descriptor.__set__(self, value)

    return property(get, set)


def _make_tracked_types() -> dict[Any, Any]:
    """A subclass of each ctypes type of ``multiprocessing.sharedctypes`` whose ``.value`` is recorded.

    They are module globals so that a value pickled to a child is rebuilt with the same type.
    """
    sharedctypes: Any = importlib.import_module("multiprocessing.sharedctypes")

    table: dict[Any, Any] = {}
    for base in sorted(set(sharedctypes.typecode_to_type.values()), key=lambda t: t.__name__):
        name = f"Recorded_{base.__name__}"
        tracked = type(name, (base,), {
            "value": _tracked_value_property(base),
            "_grader_raw": base.value,  # the ctypes descriptor, for what Synchronized.value does itself
            "__module__": __name__,
            "__qualname__": name,
            "__repr__": lambda self, _b=base: f"{_b.__name__}({_b.value.__get__(self)!r})",  # type: ignore[attr-defined]
        })
        globals()[name] = tracked
        table[base] = tracked
    return table


def _install_raw_values() -> None:
    sharedctypes: Any = importlib.import_module("multiprocessing.sharedctypes")
    original = sharedctypes.RawValue
    if getattr(original, "_grader_probe", False):
        return
    tracked = _make_tracked_types()

    def RawValue(typecode_or_type: Any, *args: Any) -> Any:  # noqa: N802 - the stdlib's name
        base = sharedctypes.typecode_to_type.get(typecode_or_type, typecode_or_type)
        return original(tracked.get(base, typecode_or_type), *args)

    RawValue._grader_probe = True  # type: ignore[attr-defined]
    sharedctypes.RawValue = RawValue  # type: ignore[assignment]


def install() -> None:
    """Record the reads and writes of ``.value`` of synchronized and raw shared values."""
    _install_synchronized()
    _install_raw_values()
