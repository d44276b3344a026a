"""The bytecode of ``grader.inside`` that every sandbox gets: the install's own where it matches, compiled otherwise."""

from __future__ import annotations

import importlib.util
import marshal
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from grader.sandbox import folder

TAG = sys.implementation.cache_tag


@pytest.fixture
def inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the ``grader.inside`` folder holding one module, with no bytecode compiled yet."""
    package = tmp_path / "inside"
    package.mkdir()
    (package / "mod.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(folder, "INSIDE_DIR", package)
    monkeypatch.setattr(folder, "_BYTECODE", None)
    monkeypatch.setattr(sys, "pycache_prefix", None)  # bytecode beside the sources, in this test's folder
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    return package


def _install_pyc(package: Path, mode: py_compile.PycInvalidationMode) -> Path:
    """Compile ``mod.py`` where the install keeps its bytecode (as ``pip install`` or a first import does)."""
    target = Path(importlib.util.cache_from_source(str(package / "mod.py"), optimization=""))
    py_compile.compile(str(package / "mod.py"), cfile=str(target), doraise=True, invalidation_mode=mode)
    return target


def _value(pyc: bytes) -> object:
    """``VALUE`` as the module compiled into ``pyc`` sets it."""
    namespace: dict[str, object] = {}
    exec(marshal.loads(pyc[16:]), namespace)
    return namespace["VALUE"]


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    compiled: list[str] = []
    real = py_compile.compile

    def counting(source: str, *args: object, **kwargs: object) -> object:
        compiled.append(Path(source).name)
        return real(source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(py_compile, "compile", counting)
    return compiled


@pytest.mark.parametrize("mode", [py_compile.PycInvalidationMode.TIMESTAMP, py_compile.PycInvalidationMode.CHECKED_HASH,
                                  py_compile.PycInvalidationMode.UNCHECKED_HASH])
def test_the_installs_bytecode_is_taken_when_it_was_compiled_from_the_source(
    inside: Path, monkeypatch: pytest.MonkeyPatch, mode: py_compile.PycInvalidationMode
) -> None:
    _install_pyc(inside, mode)
    compiled = _no_compiling(monkeypatch)
    pyc = folder.inside_bytecode()[f"mod.{TAG}.pyc"]
    assert compiled == []
    source = (inside / "mod.py").read_bytes()
    assert pyc[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(pyc[4:8], "little") == 0b11, "hash-checked, whatever the install's kind"
    assert pyc[8:16] == importlib.util.source_hash(source)
    assert _value(pyc) == 1


def test_the_installs_bytecode_of_another_source_is_compiled_again(inside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install_pyc(inside, py_compile.PycInvalidationMode.TIMESTAMP)
    (inside / "mod.py").write_text("VALUE = 22\n")  # another size: the install's bytecode is stale
    compiled = _no_compiling(monkeypatch)
    pyc = folder.inside_bytecode()[f"mod.{TAG}.pyc"]
    assert compiled == ["mod.py"]
    assert _value(pyc) == 22
    assert pyc[8:16] == importlib.util.source_hash(b"VALUE = 22\n")


def test_a_hash_checked_install_bytecode_of_an_edited_source_is_compiled_again(
    inside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_pyc(inside, py_compile.PycInvalidationMode.CHECKED_HASH)
    (inside / "mod.py").write_text("VALUE = 3\n")  # same size, other bytes
    compiled = _no_compiling(monkeypatch)
    assert _value(folder.inside_bytecode()[f"mod.{TAG}.pyc"]) == 3
    assert compiled == ["mod.py"]


@pytest.mark.parametrize("damage", ["another-python", "header-cut", "code-cut", "not-code"])
def test_bytecode_of_another_python_or_damaged_is_compiled_again(
    inside: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    target = _install_pyc(inside, py_compile.PycInvalidationMode.CHECKED_HASH)
    data = target.read_bytes()
    target.write_bytes({
        "another-python": b"\x00\x00\r\n" + data[4:],
        "header-cut": data[:12],
        "code-cut": data[: 16 + (len(data) - 16) // 2],  # the header holds, the code is cut in the middle
        "not-code": data[:16] + marshal.dumps(("VALUE", 1)),
    }[damage])
    compiled = _no_compiling(monkeypatch)
    assert _value(folder.inside_bytecode()[f"mod.{TAG}.pyc"]) == 1
    assert compiled == ["mod.py"]


def test_without_the_installs_bytecode_the_module_is_compiled_and_kept_for_the_next_process(
    inside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = _no_compiling(monkeypatch)
    first = folder.inside_bytecode()[f"mod.{TAG}.pyc"]
    assert _value(first) == 1
    assert compiled == ["mod.py"]
    kept = Path(importlib.util.cache_from_source(str(inside / "mod.py")))
    assert kept.read_bytes() == first, "left where an import of the module would look for it"
    monkeypatch.setattr(folder, "_BYTECODE", None)  # the next grading's process
    assert folder.inside_bytecode()[f"mod.{TAG}.pyc"] == first
    assert compiled == ["mod.py"], "not compiled again"


def test_a_process_that_writes_no_bytecode_leaves_none_behind(inside: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    compiled = _no_compiling(monkeypatch)
    assert _value(folder.inside_bytecode()[f"mod.{TAG}.pyc"]) == 1
    assert compiled == ["mod.py"]
    assert not (inside / "__pycache__").exists()


def test_where_the_bytecode_cannot_be_kept_the_module_is_still_compiled(
    inside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (inside / "__pycache__").write_text("a file where the folder would be")
    compiled = _no_compiling(monkeypatch)
    assert _value(folder.inside_bytecode()[f"mod.{TAG}.pyc"]) == 1
    assert compiled == ["mod.py", "mod.py"], "tried where imports keep bytecode, then in a temporary folder"


def test_every_module_of_the_real_package_gets_the_bytecode_compiling_it_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Taken from the install or compiled here, each ``.pyc`` is byte for byte what compiling the source gives."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # nothing written beside the checkout's sources
    monkeypatch.setattr(folder, "_BYTECODE", None)
    given = folder.inside_bytecode()
    monkeypatch.setattr(folder, "_BYTECODE", None)
    monkeypatch.setattr(folder, "_installed", lambda source: None)
    compiled = folder.inside_bytecode()
    expected = {f"{p.stem}.{TAG}.pyc" for p in folder.INSIDE_DIR.glob("*.py") if p.name != "boot.py"}
    assert set(given) == set(compiled) == expected
    assert given == compiled


def test_a_sandbox_interpreter_runs_the_bytecode_it_is_given(inside: Path, tmp_path: Path) -> None:
    """The copies' ``.pyc`` files are what the sandbox's interpreters load: here one whose code says 2 for a source
    that says 1 (a stand-in made to tell them apart) is what the import gives, with no bytecode written."""
    fake = inside / "fake.py"
    fake.write_text("VALUE = 2\n")
    _install_pyc(inside, py_compile.PycInvalidationMode.CHECKED_HASH)
    pyc = folder.inside_bytecode()[f"mod.{TAG}.pyc"]
    two = _compiled_code(fake, tmp_path / "fake.pyc")
    support = tmp_path / "support" / "pkg"
    (support / "__pycache__").mkdir(parents=True)
    (support / "__init__.py").write_text("")
    (support / "mod.py").write_bytes((inside / "mod.py").read_bytes())
    (support / "__pycache__" / f"mod.{TAG}.pyc").write_bytes(pyc[:16] + two)
    out = subprocess.run(
        [sys.executable, "-c", "import pkg.mod; print(pkg.mod.VALUE)"], cwd=support.parent, capture_output=True,
        text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True,
    )
    assert out.stdout.strip() == "2"
    (support / "mod.py").write_text("VALUE = 5\n")  # the source changed: its hash no longer matches
    out = subprocess.run(
        [sys.executable, "-c", "import pkg.mod; print(pkg.mod.VALUE)"], cwd=support.parent, capture_output=True,
        text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, check=True,
    )
    assert out.stdout.strip() == "5"


def _compiled_code(source: Path, target: Path) -> bytes:
    py_compile.compile(str(source), cfile=str(target), doraise=True)
    return target.read_bytes()[16:]
