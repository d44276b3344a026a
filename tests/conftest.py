"""Shared fixtures of the grader's own test suite."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# assignment folders of the grader's own tests: graded by the tests, not collected as tests
collect_ignore = ["assignments"]

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def bytecode_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One bytecode cache for every `grader` command this test process starts (a temporary folder)."""
    folder = tmp_path_factory.mktemp("pycache")
    folder.chmod(0o700)
    return folder


@pytest.fixture(scope="session", autouse=True)
def _bytecode_in_a_temporary_folder(bytecode_folder: Path) -> Iterator[None]:
    """Gradings started by the tests (in this process or below it) keep their bytecode in the session's folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADER_BYTECODE_CACHE", str(bytecode_folder))
        # `grader check` sizes its check workers by the last check's timings (grader.grading.timings): none are kept
        # across tests, so each test's check runs as a first one does; tests/test_timings.py sets its own file
        patch.setenv("GRADER_CHECK_TIMINGS", "off")
        yield


@pytest.fixture(scope="session", autouse=True)
def _sandboxes_from_the_fork_server() -> Iterator[None]:
    """``GRADER_TEST_SANDBOX_SERVER=1``: every sandbox this test process starts is a fork of one fork server.

    The suite's sandbox tests, run once this way (``./run.sh test-served``), show that a served sandbox
    behaves as a launched one; by default they launch, as a cold pytest process does.
    """
    if os.environ.get("GRADER_TEST_SANDBOX_SERVER") != "1":
        yield
        return
    from grader import served

    server = served.start_server()
    assert server is not None, "GRADER_TEST_SANDBOX_SERVER=1, but no fork server could start here"
    try:
        yield
    finally:
        served.stop_server(server)


def cli_environment(bytecode: Path) -> dict[str, str]:
    """The environment of a `grader` command run by a test: its bytecode (and its gradings') in ``bytecode``."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(bytecode)
    env["GRADER_BYTECODE_CACHE"] = str(bytecode)
    return env


@pytest.fixture
def grader_env(tmp_path: Path, bytecode_folder: Path) -> dict[str, str]:
    """Environment for running the `grader` command in a subprocess, writing only under tmp_path (and the bytecode folder)."""
    env = cli_environment(bytecode_folder)
    env["TMPDIR"] = str(tmp_path)
    return env


FORKING_GRADER = """
import json, sys
import grader.grading.grade as grade
from grader.model.assignment import find_assignment

grade.let_gradings_fork_this_process()  # as the grader command does
forks = []  # the pid of each fork made for a grading, None where none could be made
_fork = grade.fork_pytest
grade.fork_pytest = lambda *a, **k: forks.append(_fork(*a, **k)) or forks[-1]
"""
"""The start of a ``python -c`` script that grades like the ``grader`` command, recording its forks in ``forks``."""


def grader_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader", *args]


@contextlib.contextmanager
def ready_process(code: str) -> Iterator[subprocess.Popen[bytes]]:
    """``python -c code`` (dedented), once it has printed "ready"; killed and reaped afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


TINY_CLASS = {
    "ada": CORPUS / "hello_processes" / "correct" / "context_kwargs.py",
    "bob": CORPUS / "hello_processes" / "buggy" / "threads.py",
    "cy": CORPUS / "hello_processes" / "buggy" / "syntax_error.py",
}


@pytest.fixture(scope="session")
def tiny_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class of three hello_processes students (one correct, one with threads instead of processes, one syntax error)."""
    folder = tmp_path_factory.mktemp("tiny") / "class"
    folder.mkdir()
    for name, source in TINY_CLASS.items():
        (folder / f"{name}.py").write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def tiny_class_graded(tiny_class: Path, tmp_path_factory: pytest.TempPathFactory, bytecode_folder: Path) -> Path:
    """The result folder of one unsharded `grader grade hello_processes` of the tiny class."""
    import subprocess

    out = tmp_path_factory.mktemp("tiny-graded") / "out"
    env = cli_environment(bytecode_folder)
    done = subprocess.run(
        grader_command("grade", "hello_processes", str(tiny_class), "--out", str(out), "-j", "2"),
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return out
