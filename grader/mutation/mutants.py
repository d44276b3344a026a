"""Mutants of a reference solution: every operator applied at every site, one change per mutant.

Runs in the controller. The reference is parsed (never imported here); each operator (built-in,
:data:`grader.mutation.operators.OPERATORS`, and the instructor's own) is called once to count its
sites, then once per site on a fresh parse, where that one site is mutated. A mutant is kept when
its source differs from the reference's, compiles, and is not the same program as an earlier one.
The ``if __name__ == "__main__":`` block is never mutated: the checks do not run it.

A mutant's name is ``operator@function:line`` (the line in the reference), with ``#2``, ``#3`` for
further sites of one operator on one line; it stays the same while the reference does not change
around it, so ``assignment.toml`` can mark it equivalent.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.mutation.operators import OPERATORS, Operator
from grader.mutation.sites import Site, enclosing_function, parents

__all__ = ["Mutant", "MutationError", "generate", "instructor_operators", "not_importable"]

IMPORT_TIMEOUT = 120.0


class MutationError(ValueError):
    """The mutants could not be made (the reference does not parse, an operator of the instructor fails)."""


@dataclass(frozen=True)
class Mutant:
    """One mutant: its stable name, the operator, where, what changed, its source and the diff."""

    name: str
    operator: str
    function: str
    line: int
    what: str
    source: str
    diff: str


def _is_main_guard(stmt: ast.stmt) -> bool:
    test = getattr(stmt, "test", None)
    return (
        isinstance(stmt, ast.If)
        and isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id == "__name__"
    )


def _parse(source: str) -> tuple[ast.Module, list[tuple[int, ast.stmt]]]:
    """The reference's tree without its ``__main__`` block (kept aside with the number of statements after it)."""
    tree = ast.parse(source)
    guards = [(len(tree.body) - 1 - i, s) for i, s in enumerate(tree.body) if _is_main_guard(s)]
    tree.body = [s for s in tree.body if not _is_main_guard(s)]
    return tree, guards


def _sites(operator: Operator, name: str, tree: ast.Module) -> list[Site]:
    try:
        return list(operator(tree))
    except Exception as exc:  # an instructor's operator: say which one broke, and how
        raise MutationError(f"mutation operator {name} failed: {type(exc).__name__}: {exc}") from None


def _mutate(source: str, operator: Operator, name: str, index: int) -> tuple[str, Site, str, int] | None:
    """The mutant at the ``index``-th site: source, site, function and line; ``None`` if it does not compile."""
    tree, guards = _parse(source)
    site = _sites(operator, name, tree)[index]
    where = enclosing_function(site.node, parents(tree))
    line = int(getattr(site.node, "lineno", 0) or 0)
    try:
        site.mutate()
        for after, guard in guards:
            tree.body.insert(max(0, len(tree.body) - after), guard)
        text = ast.unparse(ast.fix_missing_locations(tree))
        compile(text, "<mutant>", "exec")
    except SyntaxError:
        return None
    except Exception as exc:
        raise MutationError(f"mutation operator {name} failed at line {getattr(site.node, 'lineno', 0)}: {exc}") from None
    return text + "\n", site, where, line


def generate(source: str, operators: Mapping[str, Operator] | None = None, *, module_file: str = "solution.py") -> list[Mutant]:
    """Every mutant of ``source``, in the order of ``operators`` (default: the built-in ones), then of their sites."""
    try:
        tree, guards = _parse(source)
    except SyntaxError as exc:
        raise MutationError(f"the reference does not parse: line {exc.lineno}: {exc.msg}") from None
    for after, guard in guards:
        tree.body.insert(max(0, len(tree.body) - after), guard)
    original = ast.unparse(tree) + "\n"
    seen = {original}
    mutants: list[Mutant] = []
    names: set[str] = set()
    for op_name, operator in (operators if operators is not None else OPERATORS).items():
        count = len(_sites(operator, op_name, _parse(source)[0]))
        for index in range(count):
            made = _mutate(source, operator, op_name, index)
            if made is None or made[0] in seen:
                continue
            text, site, function, line = made
            seen.add(text)
            name = base = f"{op_name}@{function}:{line}"
            number = 2
            while name in names:
                name, number = f"{base}#{number}", number + 1
            names.add(name)
            diff = "".join(
                difflib.unified_diff(
                    original.splitlines(keepends=True), text.splitlines(keepends=True),
                    f"reference/{module_file}", f"{name}/{module_file}", n=2,
                )
            )
            mutants.append(Mutant(name, op_name, function, line, site.what or op_name, text, diff))
    return mutants


def instructor_operators(path: Path) -> dict[str, Operator]:
    """The operators of an instructor's module: every top-level function named ``mutate_*``, by the rest of its name."""
    spec = importlib.util.spec_from_file_location(f"grader_mutants_{abs(hash(str(path)))}", path)
    if spec is None or spec.loader is None:
        raise MutationError(f"{path}: cannot be loaded as a module of mutation operators")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise MutationError(f"{path}: importing the mutation operators failed: {type(exc).__name__}: {exc}") from None
    found = {
        name[len("mutate_") :]: value
        for name, value in vars(module).items()
        if name.startswith("mutate_") and callable(value) and getattr(value, "__module__", None) == module.__name__
    }
    if not found:
        raise MutationError(f"{path}: defines no mutation operator (a function named mutate_<name>(tree) yielding Sites)")
    clash = sorted(set(found) & set(OPERATORS))
    if clash:
        raise MutationError(
            f"{path}: operator name(s) {', '.join(clash)} are built-in operators already; rename mutate_{clash[0]}"
        )
    return found


_IMPORT_EACH = """
import importlib.util, json, sys
failed = {}
for index, path in enumerate(sys.argv[1:]):
    try:
        spec = importlib.util.spec_from_file_location(f"grader_mutant_{index}", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except BaseException as exc:
        failed[path] = f"{type(exc).__name__}: {exc}"
print(json.dumps(failed))
"""


def not_importable(paths: Iterable[Path]) -> dict[Path, str]:
    """The mutant files among ``paths`` whose import fails, and why (imported in one child process)."""
    files = [str(p) for p in paths]
    if not files:
        return {}
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_EACH, *files], capture_output=True, text=True, timeout=IMPORT_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        failed = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise MutationError(f"could not import the mutants to check them: {done.stderr.strip()[-500:]}") from None
    return {Path(p): str(why) for p, why in failed.items()}
