"""The ``[mutants]`` table of ``assignment.toml``: the instructor's operators and equivalent mutants.

::

    [mutants]
    operators = "mutants.py"        # optional; mutants.py in the folder is used when it exists

    [[mutants.equivalent]]
    name = "results_sorted@main:12"
    reason = "the checks only ever pass one item, so sorting cannot change the result"

An equivalent mutant is a change that cannot be told apart from the reference by any correct
check; it is listed with its reason instead of being graded.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.model.assignment import CONFIG_NAME

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

__all__ = ["DEFAULT_OPERATORS_FILE", "MutantsConfig", "MutantsConfigError", "mutants_config", "table_problems"]

DEFAULT_OPERATORS_FILE = "mutants.py"


class MutantsConfigError(ValueError):
    """The ``[mutants]`` table is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class MutantsConfig:
    operators: Path | None = None
    equivalent: dict[str, str] = field(default_factory=dict)
    """Mutant name -> the instructor's reason it is equivalent."""


def table_problems(table: Any, folder: Path) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with a ``[mutants]`` table, each as (TOML key, message); empty when it is sound."""
    if not isinstance(table, dict):
        return [(("mutants",), "[mutants] must be a table")]
    problems: list[tuple[tuple[str, ...], str]] = []
    for key in sorted(set(table) - {"operators", "equivalent"}):
        problems.append((("mutants", key), f"unknown key {key!r} in [mutants] (it has 'operators' and 'equivalent')"))
    operators = table.get("operators")
    if operators is not None:
        key = ("mutants", "operators")
        if not isinstance(operators, str) or "/" in operators or not operators.endswith(".py"):
            problems.append((key, f"[mutants] operators must be a .py file name in the folder, got {operators!r}"))
        elif not (folder / operators).is_file():
            problems.append((key, f"[mutants] operators file {operators!r} does not exist in {folder}"))
    entries = table.get("equivalent", [])
    if not isinstance(entries, list):
        return [*problems, (("mutants", "equivalent"), "[mutants] equivalent must be an array of tables: [[mutants.equivalent]]")]
    seen: set[str] = set()
    for number, entry in enumerate(entries, 1):
        where = f"[[mutants.equivalent]] number {number}"
        if not isinstance(entry, dict) or set(entry) != {"name", "reason"}:
            problems.append((("mutants", "equivalent"), f"{where} must have exactly the keys name and reason"))
            continue
        name, reason = entry["name"], entry["reason"]
        if not isinstance(name, str) or not name.strip():
            problems.append((("mutants", "equivalent"), f"{where}: name must be a mutant's name, got {name!r}"))
        elif not isinstance(reason, str) or not reason.strip():
            problems.append((("mutants", "equivalent"), f"{where} ({name}): reason must say why no check can tell it apart"))
        elif name in seen:
            problems.append((("mutants", "equivalent"), f"{where}: {name} is listed twice"))
        seen.add(str(name))
    return problems


def mutants_config(folder: Path) -> MutantsConfig:
    """The ``[mutants]`` table of the assignment in ``folder`` (defaults when absent)."""
    path = Path(folder) / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MutantsConfigError(f"{path}: cannot be read: {exc}") from None
    table = data.get("mutants", {})
    problems = table_problems(table, Path(folder))
    if problems:
        raise MutantsConfigError(f"{path}: {problems[0][1]}")
    operators = table.get("operators")
    file = Path(folder) / operators if operators else Path(folder) / DEFAULT_OPERATORS_FILE
    equivalent = {str(e["name"]): str(e["reason"]).strip() for e in table.get("equivalent", [])}
    return MutantsConfig(operators=file if file.is_file() else None, equivalent=equivalent)
