"""The sandbox on its own: plain data back, every process gone, output capped."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import psutil
import pytest

from grader.inside import wire
from grader.sandbox import Sandbox, clean_text


def sandbox(tmp_path: Path, source: str, start_method: str | None = "spawn") -> Sandbox:
    path = tmp_path / "mod.py"
    path.write_text(textwrap.dedent(source))
    return Sandbox(path, "mod", start_method=start_method)


def call(func: str, *args: object) -> dict:
    return {"kind": "call", "func": func, "args": wire.encode(list(args)), "kwargs": wire.encode({})}


def test_return_value_comes_back_as_plain_data(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, "def f():\n    return [1, 'a', (2.5, None), {3: b'x'}, {4}]\n")
    raw = sb.run(call("f"), timeout=10)
    assert wire.decode(raw.result["call"]["value"]) == [1, "a", (2.5, None), {3: b"x"}, {4}]


def test_an_object_with_a_lying_eq_is_opaque(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        class Liar(list):
            def __eq__(self, other):
                return True

        def f():
            return Liar([1])
        """,
    )
    raw = sb.run(call("f"), timeout=10)
    value = wire.decode(raw.result["call"]["value"])
    assert value != [1]
    assert isinstance(value, wire.Opaque)


def test_escaped_double_forked_daemon_is_killed(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import os, time

        def f():
            r, w = os.pipe()
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.write(w, str(os.getpid()).encode())
                    os.close(w)
                    while True:
                        time.sleep(0.05)
                os._exit(0)
            os.close(w)
            pid = int(os.read(r, 100))
            time.sleep(0.5)
            return pid
        """,
        start_method=None,
    )
    raw = sb.run(call("f"), timeout=10)
    assert raw.result["call"]["ok"]
    pid = wire.decode(raw.result["call"]["value"])
    assert any(p["pid"] == pid for p in raw.leftovers)
    time.sleep(0.2)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_timeout_collects_stacks_then_kills(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import multiprocessing, time

        def sleeper():
            time.sleep(60)

        def f():
            p = multiprocessing.Process(target=sleeper)
            p.start()
            p.join()
        """,
    )
    started = time.monotonic()
    raw = sb.run(call("f"), timeout=3)
    assert raw.timed_out
    assert time.monotonic() - started < 10
    assert len(raw.stacks) >= 2
    assert any("mod.py" in text and "sleeper" in text for text in raw.stacks.values())
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and "grader_boot" in " ".join(proc.cmdline()):
                alive.append(proc)
        except psutil.Error:  # it ended while we looked
            continue
    assert not alive


def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    sb = sandbox(tmp_path, "def f():\n    print('first')\n    print('x' * 1_000_000)\n    print('last')\n")
    raw = sb.run(call("f"), timeout=10)
    assert raw.stdout.startswith("first")
    assert raw.stdout.rstrip().endswith("last")
    assert "bytes of output cut" in raw.stdout
    assert len(raw.stdout) < 100_000


def test_output_of_concurrent_threads_never_mixes_lines(tmp_path: Path) -> None:
    sb = sandbox(
        tmp_path,
        """
        import threading

        def f():
            def talk(i):
                for _ in range(200):
                    print(f"[{i}] line")
            ts = [threading.Thread(target=talk, args=(i,)) for i in range(8)]
            for t in ts: t.start()
            for t in ts: t.join()
        """,
    )
    raw = sb.run(call("f"), timeout=20)
    lines = raw.stdout.splitlines()
    assert len(lines) == 1600
    assert all(line.endswith("] line") and line.count("[") == 1 for line in lines)


def test_clean_text_escapes_control_characters_and_bad_utf8() -> None:
    assert clean_text(b"ok\x1b[31mred\xff\n") == "ok\\x1b[31mred\ufffd\n"


@pytest.mark.parametrize(
    "value",
    [0, -5, 2**70, 1.5, float("inf"), "s", b"b", (1, (2,)), [1, [2]], {"a": 1}, {(1, 2): "t"}, {1, 2}, frozenset({3})]
    + [None, True],
)
def test_wire_round_trip(value: object) -> None:
    decoded = wire.decode(wire.encode(value))
    assert decoded == value and type(decoded) is type(value)
