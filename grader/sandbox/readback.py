"""Read back what a sandbox run left, turning untrusted bytes into plain data.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
Everything in the sandbox's output folder was written by (or is owned by) the student's
code: :func:`open_plain` opens only plain files (no link, FIFO or device is followed), every
read is capped in size, nothing is unpickled, malformed parts are skipped, and text is made
safe to show anywhere (:func:`safe_text`). It owns :func:`read_result` (``result.json``),
:func:`read_events` (``evidence.jsonl``), :func:`read_capped` (stdout and stderr) and
:func:`read_status` (what :mod:`grader.sandbox.launch` reported).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

STDOUT_HEAD = 48 * 1024
STDOUT_TAIL = 16 * 1024
EVIDENCE_BYTES = 64 * 1024 * 1024
EVIDENCE_EVENTS = 400_000
RESULT_BYTES = 256 * 1024 * 1024


_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _shown(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\t":
        return ch
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF or ch in _BIDI:
        return f"\\u{code:04x}"
    return ch


def safe_text(text: str) -> str:
    """Text from the sandbox made safe to show anywhere: control characters (terminal escapes,
    carriage returns, NUL), lone surrogates and bidirectional overrides shown escaped."""
    if text.isprintable():
        return text
    return "".join(map(_shown, text))


def clean_text(data: bytes) -> str:
    """Decode captured output safely: bad UTF-8 replaced, control characters shown escaped."""
    return safe_text(data.decode("utf-8", "replace"))


def open_plain(path: Path) -> Any:
    """Open a file the sandbox wrote for reading, refusing links, FIFOs and devices.

    The output folder belongs to the student's uid: whatever is there may have
    been replaced by a symbolic link to a file of the grader or by a FIFO that
    would block a reader forever.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a plain file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: Path, head: int = STDOUT_HEAD, tail: int = STDOUT_TAIL) -> str:
    """Read a captured stream, keeping its head and tail and saying how much was cut."""
    try:
        with open_plain(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            if size <= head + tail:
                return clean_text(handle.read())
            first = handle.read(head)
            handle.seek(size - tail)
            last = handle.read(tail)
    except OSError:
        return ""
    cut = size - head - tail
    return f"{clean_text(first)}\n[... {cut} bytes of output cut ...]\n{clean_text(last)}"


def read_result(path: Path) -> dict[str, Any] | None:
    """``result.json`` as a dictionary (``None`` if missing or malformed), exception descriptions made safe to show."""
    try:
        if path.stat().st_size > RESULT_BYTES:
            return {"internal_error": "the result was too large to read"}
        data = json.loads(path.read_text(encoding="ascii"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    for phase in ("import", "call"):
        part = data.get(phase)
        if isinstance(part, dict) and isinstance(part.get("error"), dict):
            part["error"] = _clean_strings(part["error"])
    return data


def _clean_strings(value: Any, depth: int = 0) -> Any:
    """An exception description with every string made safe to show (see :func:`safe_text`)."""
    if isinstance(value, str):
        return safe_text(value)
    if depth > 6:
        return None
    if isinstance(value, dict):
        return {k: _clean_strings(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_strings(v, depth + 1) for v in value]
    return value


def read_events(path: Path) -> list[dict[str, Any]]:
    """Read evidence events, skipping anything malformed (the file is written by untrusted code)."""
    events: list[dict[str, Any]] = []
    try:
        with open_plain(path) as handle:
            data = handle.read(EVIDENCE_BYTES)
    except OSError:
        return events
    for raw in data.splitlines():
        if len(events) >= EVIDENCE_EVENTS:
            break
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            continue
        if (
            isinstance(event, dict)
            and isinstance(event.get("ev"), str)
            and type(event.get("pid")) is int
            and type(event.get("t")) in (int, float)
        ):
            events.append(event)
    events.sort(key=lambda e: e["t"])
    return events


def read_status(fd: int) -> dict[str, Any] | None:
    """The one JSON line :mod:`grader.sandbox.launch` wrote to the status pipe ``fd`` (closed here); ``None`` if none."""
    if fd < 0:
        return None
    try:
        os.set_blocking(fd, False)
        data = os.read(fd, 64 * 1024)
    except OSError:
        data = b""
    finally:
        os.close(fd)
    try:
        status = json.loads(data.decode("utf-8").splitlines()[0])
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    return status if isinstance(status, dict) else None
