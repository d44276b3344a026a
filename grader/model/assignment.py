"""Assignments as data: a folder with a config, a student README, a starter and checks.

Layout of an assignment folder::

    my_assignment/
        assignment.toml     # the config (see below)
        README.md           # the spec, in the student's words
        starter/<module>.py # what students start from
        test_*.py           # the pytest checks
        drivers.py          # optional: helpers run *inside* the sandbox

``assignment.toml``::

    [assignment]
    title = "Hello, processes"
    summary = "One line for `grader list`."
    module = "hello_processes.py"   # the file students submit
    start_method = "spawn"          # pinned for every run (spawn, fork, forkserver)
    timeout = 30                    # seconds per check (pytest-timeout)

    [checks.test_name]              # optional, per check; overrides its markers
    points = 2
    visibility = "hidden"           # visible, hidden, after_due_date, after_published
    timeout = 20
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.model.results import VISIBILITIES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

CONFIG_NAME = "assignment.toml"
START_METHODS = ("spawn", "fork", "forkserver")

__all__ = ["Assignment", "AssignmentError", "CheckConfig", "bundled_assignments", "bundled_dir", "find_assignment"]


class AssignmentError(ValueError):
    """An assignment could not be found or its config is invalid (or a check asked for what does not exist).

    ``key`` is the config entry at fault, as a TOML path (``("checks", "test_x", "points")``), when
    the config is; ``file`` and ``line`` the place in the assignment folder (a check's line) when known,
    and ``what`` the message without that place.
    """

    def __init__(
        self, message: str, *, key: tuple[str, ...] = (), file: str | None = None, line: int | None = None, what: str = ""
    ) -> None:
        super().__init__(message)
        self.key = key
        self.file = file
        self.line = line
        self.what = what or message


@dataclass(frozen=True)
class CheckConfig:
    points: float | None = None
    visibility: str | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Assignment:
    """A loaded assignment folder."""

    name: str
    path: Path
    title: str
    summary: str
    module_file: str
    start_method: str | None
    timeout: float
    checks: dict[str, CheckConfig] = field(default_factory=dict)
    drivers: Path | None = None

    @property
    def module(self) -> str:
        return self.module_file[:-3]

    @property
    def starter(self) -> Path:
        return self.path / "starter" / self.module_file

    @classmethod
    def load(cls, path: Path) -> Assignment:
        path = Path(path).resolve()
        config_path = path / CONFIG_NAME
        if not config_path.is_file():
            raise AssignmentError(f"{path} is not an assignment folder: it has no {CONFIG_NAME}")
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AssignmentError(f"{config_path}: not valid TOML: {exc}") from None
        return cls.from_config(path, data, source=str(config_path))

    @classmethod
    def from_config(cls, path: Path, data: dict[str, Any], *, source: str) -> Assignment:
        section = data.get("assignment")
        if not isinstance(section, dict):
            raise AssignmentError(f"{source}: missing [assignment] table")
        unknown = set(section) - {"name", "title", "summary", "module", "start_method", "timeout", "drivers"}
        if unknown:
            raise AssignmentError(
                f"{source}: unknown key(s) in [assignment]: {', '.join(sorted(unknown))}",
                key=("assignment", sorted(unknown)[0]),
            )
        module_file = _module_file(section.get("module"), source)
        start_method = section.get("start_method")
        if start_method is not None and start_method not in START_METHODS:
            raise AssignmentError(
                f"{source}: 'start_method' must be one of {', '.join(START_METHODS)}, got {start_method!r}",
                key=("assignment", "start_method"),
            )
        timeout = _positive(section.get("timeout", 30), "timeout", source, ("assignment", "timeout"))
        drivers_path = _drivers(path, section.get("drivers"), source)
        raw_checks = data.get("checks", {})
        if not isinstance(raw_checks, dict):
            raise AssignmentError(f"{source}: [checks] must be a table", key=("checks",))
        checks = {name: _check_config(name, entry, source) for name, entry in raw_checks.items()}
        name = section.get("name", path.name)
        return cls(
            name=str(name),
            path=path,
            title=str(section.get("title", name)),
            summary=str(section.get("summary", "")),
            module_file=module_file,
            start_method=start_method,
            timeout=timeout,
            checks=checks,
            drivers=drivers_path,
        )


def _module_file(module_file: Any, source: str) -> str:
    if not isinstance(module_file, str) or not module_file.endswith(".py") or "/" in module_file:
        raise AssignmentError(
            f"{source}: 'module' must be a file name ending in .py, got {module_file!r}", key=("assignment", "module")
        )
    if not module_file[:-3].isidentifier():
        raise AssignmentError(
            f"{source}: 'module' {module_file!r} is not an importable module name", key=("assignment", "module")
        )
    return module_file


def _drivers(path: Path, drivers: Any, source: str) -> Path | None:
    if drivers is None:
        return None
    if not isinstance(drivers, str):
        raise AssignmentError(f"{source}: 'drivers' must be a file name, got {drivers!r}", key=("assignment", "drivers"))
    drivers_path = path / drivers
    if not drivers_path.is_file():
        raise AssignmentError(f"{source}: 'drivers' file {drivers!r} does not exist", key=("assignment", "drivers"))
    return drivers_path


def _check_config(name: str, entry: Any, source: str) -> CheckConfig:
    if not isinstance(entry, dict):
        raise AssignmentError(f"{source}: [checks.{name}] must be a table", key=("checks", name))
    bad = set(entry) - {"points", "visibility", "timeout"}
    if bad:
        raise AssignmentError(
            f"{source}: unknown key(s) in [checks.{name}]: {', '.join(sorted(bad))}", key=("checks", name, sorted(bad)[0])
        )
    visibility = entry.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise AssignmentError(
            f"{source}: [checks.{name}] visibility must be one of {', '.join(VISIBILITIES)}, got {visibility!r}",
            key=("checks", name, "visibility"),
        )
    points = entry.get("points")
    if points is not None and (type(points) not in (int, float) or points < 0):
        raise AssignmentError(
            f"{source}: [checks.{name}] points must be a number >= 0, got {points!r}", key=("checks", name, "points")
        )
    return CheckConfig(
        points=float(points) if points is not None else None,
        visibility=visibility,
        timeout=_positive(entry["timeout"], f"[checks.{name}] timeout", source, ("checks", name, "timeout"))
        if "timeout" in entry
        else None,
    )


def _positive(value: Any, key: str, source: str, where: tuple[str, ...] = ()) -> float:
    if type(value) not in (int, float) or value <= 0:
        raise AssignmentError(f"{source}: '{key}' must be a positive number of seconds, got {value!r}", key=where)
    return float(value)


def bundled_dir() -> Path:
    """Where the bundled assignments live (inside an installed package, or the source tree)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "assignments"
    if packaged.is_dir():
        return packaged
    return here.parent / "assignments"


def bundled_assignments() -> list[Assignment]:
    root = bundled_dir()
    if not root.is_dir():
        return []
    return [Assignment.load(p) for p in sorted(root.iterdir()) if (p / CONFIG_NAME).is_file()]


def find_assignment(name_or_path: str) -> Assignment:
    """A bundled assignment by name, or an instructor's assignment folder by path."""
    candidate = Path(name_or_path)
    if (candidate / CONFIG_NAME).is_file():
        return Assignment.load(candidate)
    bundled = bundled_dir() / name_or_path
    if "/" not in name_or_path and (bundled / CONFIG_NAME).is_file():
        return Assignment.load(bundled)
    if candidate.exists():
        raise AssignmentError(f"{name_or_path} is not an assignment folder: it has no {CONFIG_NAME}")
    known = [a.name for a in bundled_assignments()]
    close = difflib.get_close_matches(name_or_path, known, n=1, cutoff=0.6)
    if close:
        raise AssignmentError(f"unknown assignment {name_or_path!r}; did you mean {close[0]}?")
    names = ", ".join(known) or "none"
    raise AssignmentError(f"unknown assignment {name_or_path!r}; bundled assignments: {names} (or give a folder path)")


def assignment_for(path: Path) -> Assignment | None:
    """The assignment whose folder contains ``path`` (a check file), if any."""
    for parent in [path, *path.parents]:
        if (parent / CONFIG_NAME).is_file():
            return Assignment.load(parent)
    return None
