"""Shared fixtures of the grader's own test suite."""

from __future__ import annotations

import os
import sys
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


@pytest.fixture
def grader_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running the `grader` command in a subprocess, writing only under tmp_path."""
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp_path)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def grader_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "grader", *args]
