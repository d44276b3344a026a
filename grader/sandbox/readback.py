"""Read back what a sandbox run left, turning untrusted bytes into plain data.

Runs in the pytest process (the trusted checking side, the sandbox host); it never judges.
Everything in the sandbox's output folder was written by (or is owned by) the student's
code, so every file is read through one function, :func:`read_back`: it opens without
following a link and without blocking (``O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC``), requires
the open descriptor to be a plain file (no FIFO, device, socket, folder or link), and reads
at most a bound (one byte more, to tell a file over the bound). JSON is parsed by
:func:`parse_json`, which refuses a document nested deeper than :data:`JSON_DEPTH` before
``json.loads`` sees it. Nothing is unpickled; malformed parts are skipped; text is made safe
to show anywhere (:func:`safe_text`).

A file that is not a plain file, over its bound or nested too deep raises :class:`Refused`,
which says what was observed, what was expected and what to look at; the sandbox records it
in :attr:`grader.sandbox.RawRun.refused` and the check fails with that message: the student's
result, never an error of the grader. It owns :func:`read_result` (``result.json``),
:func:`read_events` (``evidence.jsonl``), each in two steps (``load_*``: the bounded read,
done before the sandbox's folder is deleted; ``parse_*``: parsing, done after the check's
alarm is no longer held back), :func:`read_capped` (stdout and stderr) and :func:`read_status`
(what :mod:`grader.sandbox.launch` reported).

Bounds, measured on the bundled reference solutions and ``tests/corpus/*/correct`` (57
submissions, 323 runs of every check): the largest ``result.json`` was 2.9 MiB (duplex_pipe's
large messages), the largest ``evidence.jsonl`` 17 KiB and captured output 245 bytes: the
bounds (:data:`RESULT_BYTES` 32 MiB, :data:`EVIDENCE_BYTES` 8 MiB, room for debugging prints)
leave a margin of 10 times and more.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from grader.sandbox.stream import Streamed

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


STDOUT_HEAD = 48 * 1024
STDOUT_TAIL = 16 * 1024
RESULT_BYTES = 32 * 1024 * 1024
EVIDENCE_BYTES = 8 * 1024 * 1024
EVIDENCE_EVENTS = 400_000
STACK_BYTES = 256 * 1024
JSON_ITEMS = 1_000_000
"""Most values (numbers, strings, lists, objects) a ``result.json`` may hold: each costs the
checking process some 50-100 bytes once parsed (a 32 MiB file of ``{}`` would be 11 million
objects, over a GiB); the bundled references return a few hundred at most."""
EVIDENCE_ITEMS = 2_000_000
"""Most values all evidence lines together may hold (counted before parsing)."""
JSON_DEPTH = 200
"""Deepest nesting of lists and objects a JSON document from the sandbox may have: a value the
wire format encodes (:data:`grader.inside.wire.MAX_DEPTH` levels, three JSON levels each at
most) inside the result's envelope fits; ``json.loads`` would recurse into anything deeper."""

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_SQUARE = bytes.maketrans(b"{}", b"[]")
_PEEL = 32
_STEP = tuple(1 if c in b"[{" else -1 if c in b"]}" else 0 for c in range(256))
_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISLNK, "a symbolic link"),
)
LEAVE_ALONE = "your code must not create, replace or link files in the grader's output folder ($GRADER_SANDBOX_OUT)"


def size_text(count: int) -> str:
    """A byte count in words: ``"64.0 MiB"``, ``"512 bytes"``."""
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count} bytes"


class Refused(Exception):
    """A file the sandbox left that the grader will not read: what was observed, what was expected, where to look."""

    def __init__(self, observed: str, expected: str, hint: str = LEAVE_ALONE) -> None:
        self.observed = observed
        self.expected = expected
        self.hint = hint
        super().__init__(observed)

    def as_dict(self) -> dict[str, str]:
        return {"observed": self.observed, "expected": self.expected, "hint": self.hint}


@dataclass(frozen=True)
class ReadBack:
    """The bytes read from a sandbox's file: ``data`` (head, or all of it), ``tail`` and the file's ``size``."""

    data: bytes
    size: int
    tail: bytes = b""

    @property
    def cut(self) -> int:
        """How many bytes between ``data`` and ``tail`` were not read."""
        return max(0, self.size - len(self.data) - len(self.tail))


def _kind(mode: int) -> str:
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a plain file"


def _read_upto(fd: int, count: int) -> bytes:
    parts: list[bytes] = []
    left = count
    while left > 0:
        chunk = os.read(fd, min(left, 1024 * 1024))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_back(
    path: Path, limit: int, *, what: str, keep_tail: int = 0, start: int = 0, over: str = "refuse"
) -> ReadBack:
    """Read a file the sandbox left: a plain file only, at most ``limit`` bytes (from offset ``start``).

    The file is opened without following a link and without blocking, and checked on the
    open descriptor (never a ``stat`` by path, then a read). Over ``limit``, ``over="refuse"``
    raises :class:`Refused` (read ``limit + 1`` bytes to tell); ``over="cut"`` keeps the
    first ``limit - keep_tail`` and the last ``keep_tail`` bytes. ``what`` names the file for
    the student (``"the result file (result.json)"``). A missing file raises
    :class:`FileNotFoundError`; a link, FIFO, device, socket or folder raises :class:`Refused`.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        kind = _lstat_kind(path)
        raise Refused(f"{what} is {kind}, which the grader does not open", f"{what} as a plain file", LEAVE_ALONE) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{what} is {_kind(info.st_mode)}, not a plain file", f"{what} as a plain file", LEAVE_ALONE)
        if start:
            os.lseek(fd, start, os.SEEK_SET)
        if over == "refuse":
            data = _read_upto(fd, limit + 1) if info.st_size - start <= limit else b""  # too big already: not read
            if len(data) > limit or info.st_size - start > limit:
                size = max(info.st_size, os.fstat(fd).st_size) - start
                raise Refused(
                    f"the run left {size_text(size)} in {what}; the limit is {size_text(limit)}",
                    f"{what} of at most {size_text(limit)}",
                    LEAVE_ALONE,
                )
            return ReadBack(data, start + len(data))
        head = _read_upto(fd, limit - keep_tail)
        size = os.fstat(fd).st_size
        tail = b""
        if keep_tail and size > start + len(head):
            os.lseek(fd, max(start + len(head), size - keep_tail), os.SEEK_SET)
            tail = _read_upto(fd, keep_tail)
        return ReadBack(head, max(size, start + len(head) + len(tail)) - start, tail)
    finally:
        os.close(fd)


def _lstat_kind(path: Path) -> str:
    try:
        return _kind(os.lstat(path).st_mode)
    except OSError:
        return "not readable"


def json_shape(data: bytes) -> tuple[int, int]:
    """How deep lists and objects nest in a JSON document and about how many values it holds, without recursing.

    Strings are skipped. For a document ``json.loads`` accepts the depth is exact (the count
    of values, an upper bound, is one more than the commas and openers); for one it rejects the figures may be
    off, but only past the point where the parser stops anyway. Each pass of ``replace``
    takes away the innermost level (an empty ``[]`` once everything but brackets is gone),
    cheaply; what is left is counted bracket by bracket.
    """
    bare = _STRING.sub(b"", data)
    items = bare.count(b",") + bare.count(b"[") + bare.count(b"{") + 1
    brackets = bare.translate(_SQUARE, _NOT_BRACKETS)
    peeled = 0
    while brackets and peeled < _PEEL:
        shorter = brackets.replace(b"[]", b"")
        if len(shorter) == len(brackets):
            break
        brackets, peeled = shorter, peeled + 1
    return peeled + max(0, max(accumulate(map(_STEP.__getitem__, brackets)), default=0)), items


def parse_json(data: bytes, *, what: str, max_depth: int = JSON_DEPTH, max_items: int = JSON_ITEMS) -> Any:
    """JSON from the sandbox: refused (:class:`Refused`) when nested deeper than ``max_depth`` or
    holding more than ``max_items`` values, before ``json.loads`` sees it; ``ValueError`` when malformed."""
    if data.count(b"[") + data.count(b"{") > max_depth or data.count(b",") >= max_items:
        depth, items = json_shape(data)
        if depth > max_depth:
            raise Refused(
                f"{what} nests lists and objects {depth} levels deep; the limit is {max_depth}",
                f"{what} nested at most {max_depth} levels deep",
                "return a flatter value (nested lists or dicts a few levels deep at most); " + LEAVE_ALONE,
            )
        if items > max_items:
            raise Refused(
                f"{what} holds about {items:,} values; the limit is {max_items:,}",
                f"{what} with at most {max_items:,} values",
                "return a smaller value (a summary rather than every item); " + LEAVE_ALONE,
            )
    return json.loads(data.decode("utf-8"))


def read_capped(path: Path, head: int = STDOUT_HEAD, tail: int = STDOUT_TAIL, *, what: str = "captured output") -> str:
    """Read a captured stream, keeping its head and tail and saying how much was cut (``""`` if missing).

    Raises :class:`Refused` if it is not a plain file.
    """
    try:
        got = read_back(path, head + tail, what=what, keep_tail=tail, over="cut")
    except FileNotFoundError:
        return ""
    if not got.cut:
        return clean_text(got.data + got.tail)
    return f"{clean_text(got.data)}\n[... {got.cut} bytes of output cut ...]\n{clean_text(got.tail)}"


RESULT_FILE = "the result file (result.json)"


def load_result(path: Path) -> bytes | None:
    """The bytes of ``result.json`` (``None`` if missing); :class:`Refused` if not plain or over :data:`RESULT_BYTES`."""
    try:
        return read_back(path, RESULT_BYTES, what=RESULT_FILE).data
    except FileNotFoundError:
        return None


def parse_result(data: bytes | None) -> dict[str, Any] | None:
    """``result.json``'s bytes as a dictionary (``None`` if missing or malformed), exception descriptions made safe to show.

    :class:`Refused` if nested deeper than :data:`JSON_DEPTH` or holding more than :data:`JSON_ITEMS` values.
    """
    if data is None:
        return None
    try:
        result = parse_json(data, what=RESULT_FILE)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(result, dict):
        return None
    for phase in ("import", "call"):
        part = result.get(phase)
        if isinstance(part, dict) and isinstance(part.get("error"), dict):
            part["error"] = _clean_strings(part["error"])
    return result


def read_result(path: Path) -> dict[str, Any] | None:
    """:func:`load_result` then :func:`parse_result`."""
    return parse_result(load_result(path))


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


EVIDENCE_FILE = "the evidence file (evidence.jsonl: what the probes recorded, one line per event)"


def _event(raw: bytes) -> dict[str, Any] | None:
    try:
        event = parse_json(raw, what="an evidence line")
    except (Refused, ValueError, UnicodeDecodeError, RecursionError):
        return None
    if (
        isinstance(event, dict)
        and isinstance(event.get("ev"), str)
        and type(event.get("pid")) is int
        and type(event.get("t")) in (int, float)
    ):
        event.pop(SENT_BY, None)  # the trusted side's to say, never the sandbox's
        return event
    return None


SENT_BY = "sent_by"
"""Key the sandbox host sets on every event that came through the evidence stream:
``[sender's host pid (0: the kernel gave none), its pid in the sandbox (None: not identified), arrival time]``."""
EVIDENCE_STREAM = "the evidence stream (what the probes sent, one message per event)"


def parse_stream(streamed: Streamed) -> list[dict[str, Any]]:
    """Evidence events from what the stream received, each with its kernel-attested sender (:data:`SENT_BY`), in time order.

    :class:`Refused` if the messages hold more than :data:`EVIDENCE_ITEMS` values together.
    """
    found: list[dict[str, Any]] = []
    if streamed.dropped:  # over its bound: refused (see stream_refusals), never parsed, as an evidence file over it
        return found
    budget = EVIDENCE_ITEMS
    for host, arrived, raw in streamed.messages:
        budget -= raw.count(b",") + raw.count(b"[") + raw.count(b"{")
        if budget < 0:
            raise Refused(
                f"{EVIDENCE_STREAM} holds more than {EVIDENCE_ITEMS:,} values; the limit is {EVIDENCE_ITEMS:,}",
                f"{EVIDENCE_STREAM} with at most {EVIDENCE_ITEMS:,} values",
                EVIDENCE_HINT,
            )
        event = _event(raw.rstrip(b"\n"))
        if event is not None:
            event[SENT_BY] = [host, streamed.senders.get(host), arrived]
            found.append(event)
    found.sort(key=lambda e: e["t"])
    return found


def parse_evidence(loaded: Loaded) -> list[dict[str, Any]]:
    """The evidence events of a run: from what the stream received, else from the evidence file's bytes."""
    return parse_events(loaded.events) if loaded.stream is None else parse_stream(loaded.stream)


def stream_refusals(streamed: Streamed, limit: int = EVIDENCE_BYTES) -> list[dict[str, str]]:
    """Why the stream's evidence cannot be used in full: over its bound, or too many connections."""
    out = []
    if streamed.dropped:
        out.append(Refused(
            f"the run sent at least {size_text(streamed.size)} in {len(streamed.messages) + streamed.dropped:,} "
            f"messages through {EVIDENCE_STREAM}; the limit is {size_text(limit)} and {EVIDENCE_EVENTS:,} events",
            f"{EVIDENCE_STREAM} of at most {size_text(limit)}",
            EVIDENCE_HINT,
        ).as_dict())
    if streamed.refused_connections:
        out.append(Refused(
            f"the run opened {streamed.connections + streamed.refused_connections} connections to {EVIDENCE_STREAM}; "
            f"the limit is {streamed.connections}",
            f"at most {streamed.connections} connections, one per process",
            "start fewer processes; " + LEAVE_ALONE,
        ).as_dict())
    return out


EVIDENCE_HINT = (
    "every line your program prints, and every process and thread it starts, is recorded: "
    "print less (no printing inside long loops) and start fewer processes; " + LEAVE_ALONE
)


def load_events(path: Path) -> bytes:
    """The bytes of ``evidence.jsonl`` (empty if missing); :class:`Refused` if not plain or over :data:`EVIDENCE_BYTES`."""
    try:
        return read_back(path, EVIDENCE_BYTES, what=EVIDENCE_FILE).data
    except FileNotFoundError:
        return b""
    except Refused as exc:
        if "the limit is" in exc.observed:
            exc.hint = EVIDENCE_HINT
        raise


def parse_events(data: bytes) -> list[dict[str, Any]]:
    """Evidence events from the bytes of ``evidence.jsonl``, skipping anything malformed, in time order.

    A line nested too deep is skipped like any malformed line; :class:`Refused` if the lines
    hold more than :data:`EVIDENCE_ITEMS` values together.
    """
    events: list[dict[str, Any]] = []
    budget = EVIDENCE_ITEMS
    for raw in data.splitlines():
        if len(events) >= EVIDENCE_EVENTS:
            break
        budget -= raw.count(b",") + raw.count(b"[") + raw.count(b"{")
        if budget < 0:
            raise Refused(
                f"{EVIDENCE_FILE} holds more than {EVIDENCE_ITEMS:,} values; the limit is {EVIDENCE_ITEMS:,}",
                f"{EVIDENCE_FILE} with at most {EVIDENCE_ITEMS:,} values",
                EVIDENCE_HINT,
            )
        event = _event(raw)
        if event is not None:
            events.append(event)
    events.sort(key=lambda e: e["t"])
    return events


def read_events(path: Path) -> list[dict[str, Any]]:
    """:func:`load_events` then :func:`parse_events`."""
    return parse_events(load_events(path))


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


def file_id(path: Path) -> tuple[int, int] | None:
    """Device and inode of ``path`` itself (a link is not followed), or ``None``."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def evidence_file_problems(path: Path, made: tuple[int, int] | None) -> list[str]:
    """Integrity flags for an evidence file that is not the one the sandbox made before the run."""
    now = file_id(path)
    if made is None or now == made:
        return []
    what = "deleted" if now is None else "replaced by another file (renamed over it or rewritten as a new file)"
    return [
        f"the evidence file was {what} during the run: the evidence the probes wrote was not what the grader "
        "read back, so no check of this run can be trusted"
    ]


class Loaded(NamedTuple):
    """The bounded bytes of ``result.json`` and ``evidence.jsonl`` (or what the evidence stream received),
    read before the folder went, parsed later."""

    result: bytes | None
    events: bytes
    stream: Streamed | None = None


def load_run_files(out: Path, stream: Streamed | None = None) -> tuple[Loaded, str, str, list[dict[str, str]]]:
    """Read what the run left in ``out`` (bounded, plain files only): loaded files, stdout, stderr, refusals.

    With ``stream`` (what the evidence stream received) there is no evidence file to read.
    """
    refused: list[dict[str, str]] = stream_refusals(stream) if stream is not None else []

    def attempt(read: Any, default: Any) -> Any:
        try:
            return read()
        except Refused as exc:
            refused.append(exc.as_dict())
        except OSError as exc:
            refused.append({"observed": f"a file the run left could not be read ({exc.strerror})",
                            "expected": "plain files the grader can read", "hint": ""})
        return default

    result = attempt(lambda: load_result(out / "result.json"), None)
    events = attempt(lambda: load_events(out / "evidence.jsonl"), b"") if stream is None else b""
    stdout = attempt(lambda: read_capped(out / "stdout.txt", what="the captured output (stdout.txt)"), "")
    stderr = attempt(lambda: read_capped(out / "stderr.txt", what="the captured error output (stderr.txt)"), "")
    return Loaded(result, events, stream), stdout, stderr, refused
