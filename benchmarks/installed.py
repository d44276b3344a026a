"""What the benchmarks' commands run with: the grader as a plain install has it, not a development shell.

A development environment holds more than an install of concurrency-grader brings: test tools
with pytest plugins of their own (hypothesis's loads in every plain ``pytest`` run and costs about
half a second of CPU there), and a shell may set ``PYTHONDONTWRITEBYTECODE``, so that no module's
bytecode is cached. Neither is what an instructor who installed the grader has, and both would
slow the plain-pytest loop that ``benchmarks/throughput.py`` compares with more than ``grader``
(which loads only the plugins it names).
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

DISTRIBUTION = "concurrency-grader"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions() -> set[str]:
    """concurrency-grader and everything installing it brings (its requirements without extras, transitively)."""
    seen: set[str] = set()
    todo = [DISTRIBUTION]
    while todo:
        name = _canonical(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def plugins_beyond_the_install() -> list[str]:
    """Names of the pytest plugins installed here (``pytest11`` entry points) that installing the grader does not bring."""
    runtime = runtime_distributions()
    names = set()
    for entry in metadata.entry_points(group="pytest11"):
        dist = getattr(entry, "dist", None)
        if dist is None or _canonical(dist.metadata["Name"]) not in runtime:
            names.add(entry.name)
    return sorted(names)


@functools.cache
def plain_pytest_options() -> tuple[str, ...]:
    """``-p no:NAME`` for each plugin of :func:`plugins_beyond_the_install`: plain pytest as after an install.

    Read once: the loop asks for every student, and reading the installed metadata takes about 10 ms.
    """
    return tuple(option for name in plugins_beyond_the_install() for option in ("-p", f"no:{name}"))


@functools.cache
def _pycache() -> Path:
    """A temporary folder of this process's for bytecode, shared by every command it runs, removed at its exit."""
    path = Path(tempfile.mkdtemp(prefix="bench-pycache-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def installed_environment() -> dict[str, str]:
    """This environment, with bytecode cached (in :func:`_pycache`) as an install's is, and no ``PYTEST_ADDOPTS``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTEST_ADDOPTS")}
    env["PYTHONPYCACHEPREFIX"] = str(_pycache())
    return env
