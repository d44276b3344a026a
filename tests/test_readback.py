"""Everything read back from a sandbox goes through one bounded reader (``grader.sandbox.readback``).

Links, FIFOs, devices, sockets and folders are refused without blocking; a file over its
bound is refused after reading at most one byte more than the bound; JSON nested too deep or
holding too many values is refused before ``json.loads`` sees it. The end-to-end cases (a
submission that leaves such files) are in ``tests/corpus/hostile`` (``result_*``,
``evidence_huge``, ``stack_symlink``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import psutil
import pytest

from grader.sandbox import readback
from grader.sandbox.readback import (
    EVIDENCE_BYTES,
    JSON_DEPTH,
    RESULT_BYTES,
    Refused,
    json_shape,
    parse_events,
    parse_json,
    read_back,
    read_capped,
    read_events,
    read_result,
)
from grader.sandbox.stacks import collect

LINUX = sys.platform.startswith("linux")


def test_a_plain_file_is_read_whole_and_a_missing_one_says_so(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_bytes(b'{"call": {"ok": true}}')
    assert read_back(path, 100, what="x").data == b'{"call": {"ok": true}}'
    assert read_result(path) == {"call": {"ok": True}}
    with pytest.raises(FileNotFoundError):
        read_back(tmp_path / "missing", 100, what="x")
    assert read_result(tmp_path / "missing") is None
    assert read_events(tmp_path / "missing") == []


@pytest.mark.skipif(not LINUX, reason="FIFOs, devices and sockets as Linux has them")
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "device", "folder", "socket", "link to a file"])
def test_anything_but_a_plain_file_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "result.json"
    server = None
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
    else:
        (tmp_path / "secret").write_text("{}")
        path.symlink_to(tmp_path / "secret")
    started = time.monotonic()
    try:
        with pytest.raises(Refused) as refused:
            read_result(path)
    finally:
        if server is not None:
            server.close()
    assert time.monotonic() - started < 1
    assert "not a plain file" in refused.value.observed or "does not open" in refused.value.observed
    assert refused.value.expected and refused.value.hint


def test_a_file_over_its_bound_is_refused_with_its_size_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    with open(path, "wb") as handle:
        handle.truncate(64 * 1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(Refused) as refused:
            read_result(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.observed.endswith(f"64.0 MiB in the result file (result.json); the limit is {RESULT_BYTES >> 20}.0 MiB")
    assert peak < 1024 * 1024, f"refusing a 64 MiB file allocated {peak} bytes"
    path.write_bytes(b"x" * 101)
    with pytest.raises(Refused):
        read_back(path, 100, what="x")
    assert read_back(path, 101, what="x").size == 101


def test_a_file_that_grows_past_its_bound_while_read_is_still_cut_at_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"")
    with open(path, "ab") as grow:
        grow.write(b"x" * (EVIDENCE_BYTES + 10))
    with pytest.raises(Refused, match="the limit is 8.0 MiB"):
        read_events(path)


def test_captured_output_keeps_its_head_and_tail(tmp_path: Path) -> None:
    path = tmp_path / "stdout.txt"
    path.write_bytes(b"a" * 100 + b"b" * 100 + b"c" * 100)
    text = read_capped(path, head=50, tail=50)
    assert text.startswith("a" * 50) and text.endswith("c" * 50) and "[... 200 bytes of output cut ...]" in text
    path.unlink()
    os.symlink("/dev/zero", path)
    with pytest.raises(Refused):
        read_capped(path)


def test_json_nested_too_deep_is_refused_before_json_loads_recurses() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    started = time.monotonic()
    with pytest.raises(Refused, match="100000 levels deep; the limit is 200"):
        parse_json(deep, what="the result file (result.json)")
    assert time.monotonic() - started < 1
    fine = json.dumps({"call": {"value": [[[[{"$dict": [["k", [1, "[[[[[[["]]]}]]]]}}).encode()
    assert json_shape(fine)[0] == 10
    assert parse_json(fine, what="x")["call"]["value"][0][0][0][0]["$dict"][0][1] == [1, "[[[[[[["]
    assert json_shape(b"[" * JSON_DEPTH + b"]" * JSON_DEPTH)[0] == JSON_DEPTH
    assert json_shape(b'[[], {"a": [[]]}, "]]]]"]') == (4, 8)  # values: an upper bound, commas + openers + 1


def test_json_with_too_many_values_is_refused(tmp_path: Path) -> None:
    many = b"[" + b"{}," * readback.JSON_ITEMS + b"{}]"
    with pytest.raises(Refused, match="values; the limit is 1,000,000"):
        parse_json(many, what="x")
    flood = (b'{"ev": "x", "pid": 1, "t": 0, "pad": [' + b"{}," * 10_000 + b"{}]}\n") * 300
    with pytest.raises(Refused, match="the limit is 2,000,000"):
        parse_events(flood)


def test_malformed_evidence_lines_are_skipped() -> None:
    data = b'{"ev": "a", "pid": 1, "t": 2}\nnot json\n' + b"[" * 5000 + b"\n" + b'{"ev": "b", "pid": 1, "t": 1}\n'
    assert [e["ev"] for e in parse_events(data)] == ["b", "a"]


@pytest.mark.skipif(not LINUX or not hasattr(os, "fork"), reason="faulthandler dumps on SIGUSR1, Linux")
def test_a_stack_dump_that_is_a_link_is_not_read(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "stacks").mkdir(parents=True)
    forged = tmp_path / "forged.txt"
    forged.write_text("")
    code = (
        "import signal, sys, time\n"
        "def grow(*_):\n"
        f"    open({str(forged)!r}, 'a').write('Thread 0x01 (most recent call first):\\n"
        "  File \"/etc/shadow\", line 1 in FORGED_FRAME\\n')\n"
        "signal.signal(signal.SIGUSR1, grow)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        (out / "stacks" / f"{proc.pid}.txt").symlink_to(forged)
        docs = collect([psutil.Process(proc.pid)], out, budget=1.5, use_py_spy=False)
    finally:
        proc.kill()
        proc.communicate()
    assert forged.read_text(), "the process did not write its forged dump"
    assert "FORGED_FRAME" not in repr(docs)
