"""Watched attributes: reads, writes and in-place use of the attributes of a student's objects.

Runs on the untrusted side, in every process of the sandbox. A check asks for
it with ``watch=["BoundedBuffer"]`` (every instance attribute of every instance
of that class of the student's module, subclasses included) or
``watch=["BoundedBuffer.items"]`` (that attribute only). The class's attribute
access is wrapped so that each read and write of an attribute that lives in the
instance's ``__dict__`` is counted by :func:`grader_inside.probe_locks._note_access`,
with the locks the thread held, the thread and the line, as ``counter.value``
is: the lockset rule judges both alike. An attribute holding a ``list``,
``deque``, ``dict``, ``set`` or ``bytearray`` is recorded as ``"use"`` with its
length (``self.items.append(x)`` and ``len(self.items)`` both read the attribute
first, so every in-place change is seen at the access that makes it, and every
state of the container at the next access). Attributes holding synchronisation
objects (locks, conditions, semaphores, events, barriers, queues) or callables
are not shared state and are left out. Identities: ``attr:PID:Class#N.name``,
``N`` numbering instances in the process as traced methods do (``obj``).
"""

from __future__ import annotations

import collections
import queue
import threading

from . import probe_locks, probe_pause, probes

TYPE_CHECKING = False
if TYPE_CHECKING:  # annotations only: importing typing would cost every interpreter of a sandbox 3 ms
    from typing import Any

_CONTAINERS = (list, collections.deque, dict, set, bytearray)
_watched: set[type] = set()


def _sync_types() -> tuple[type, ...]:
    from multiprocessing import queues, synchronize

    from . import probe_sync

    types: list[Any] = [probe_sync.RecordedLock, threading.Condition, threading.Semaphore, threading.Event,
                        threading.Barrier, type(probe_sync._ORIGINAL.get("Lock", threading.Lock)()),
                        queue.Queue, queues.Queue, synchronize.SemLock, synchronize.Condition, synchronize.Event,
                        synchronize.Barrier]
    rlock = probe_sync._ORIGINAL.get("RLock", threading.RLock)()
    types.append(type(rlock))
    return tuple(t for t in types if isinstance(t, type))


_SYNC: tuple[type, ...] = ()


def _record(obj: Any, name: str, value: Any, op: str) -> None:
    if probe_locks._is_internal() or isinstance(value, _SYNC) or (callable(value) and not isinstance(value, _CONTAINERS)):
        return
    size = None
    if isinstance(value, _CONTAINERS):
        op = "use" if op == "read" else op
        size = len(value)
    key = f"attr:{probes._getpid()}:{type(obj).__name__}#{probes._object_number(obj)}.{name}"
    probe_locks._note_access(obj, op, size if size is not None else value, None, key=key, size=size)
    if op == "use" and probe_pause.active():
        probe_pause.before_unlocked_use(key)


def _watch_class(cls: type, attrs: set[str] | None) -> None:
    original_get: Any = cls.__getattribute__
    original_set: Any = cls.__setattr__

    def __getattribute__(self: Any, name: str) -> Any:
        value = original_get(self, name)
        if name[:2] != "__" and (attrs is None or name in attrs):
            try:
                own = object.__getattribute__(self, "__dict__")
            except AttributeError:
                return value
            if name in own and own[name] is value:
                _record(self, name, value, "read")
        return value

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if name[:2] != "__" and (attrs is None or name in attrs):
            _record(self, name, value, "write")
        original_set(self, name, value)

    cls.__getattribute__ = __getattribute__  # type: ignore[method-assign,assignment]
    cls.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]


def watch_module(module: Any, names: list[str]) -> None:
    """Watch the attributes ``names`` (``Class`` or ``Class.attr``) of the student's module's classes."""
    global _SYNC
    if not _SYNC:
        _SYNC = _sync_types()
    wanted: dict[str, set[str] | None] = {}
    for name in names:
        class_name, _, attr = name.partition(".")
        if attr:
            current = wanted.get(class_name, set())
            if current is not None:
                current.add(attr)
                wanted[class_name] = current
        else:
            wanted[class_name] = None
    for class_name, attrs in wanted.items():
        cls = getattr(module, class_name, None)
        if isinstance(cls, type) and cls not in _watched and getattr(cls, "__dictoffset__", 0) != 0:  # not __slots__ only
            _watched.add(cls)
            _watch_class(cls, attrs)
