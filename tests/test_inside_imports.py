"""What every interpreter of a sandbox imports before the student's code runs, and no more.

The boot script and the probes are imported by a sandbox's first process and again by each
``spawn`` child the student's code starts (a hello_processes grading starts 27 interpreters), so a
module they import for nothing costs every one of those interpreters its import time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from fresh_interpreter import modules_loaded

from grader.sandbox.folder import INSIDE_DIR


def test_the_sandbox_side_imports_neither_typing_nor_base64(tmp_path: Path) -> None:
    """``typing`` (3 ms) serves annotations only; ``base64`` only the rare ``bytes`` on the wire."""
    shutil.copytree(INSIDE_DIR, tmp_path / "grader_inside", ignore=shutil.ignore_patterns("__pycache__"))
    names = sorted(p.stem for p in INSIDE_DIR.glob("*.py") if p.stem not in ("__init__", "boot"))
    assert {"guard", "probes", "runner", "wire", "probe_locks"} <= set(names)
    loaded = modules_loaded(
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "import importlib, json, multiprocessing.spawn\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module('grader_inside.' + name)"
    )
    assert {f"grader_inside.{name}" for name in names} <= loaded
    assert not loaded & {"typing", "base64"}, sorted(loaded & {"typing", "base64"})


def test_bytes_still_cross_the_wire() -> None:
    """``base64``, imported where bytes are encoded and decoded, still carries them both ways."""
    from grader.inside import wire

    for value in (b"", b"\x00\xffabc", bytes(range(256))):
        assert wire.decode(wire.encode(value)) == value
    assert wire.decode(wire.encode({"k": [b"x", 1]})) == {"k": [b"x", 1]}
