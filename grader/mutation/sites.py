"""What a mutation operator works with: a :class:`Site`, and helpers to find the places to mutate.

An operator is a plain function ``operator(tree: ast.Module) -> Iterator[Site]``. It yields one
:class:`Site` per place it applies to; ``site.mutate()`` changes ``tree`` in place. The operator is
called on a fresh parse of the reference for each mutant (see :mod:`grader.mutation.mutants`), so
a site's ``mutate`` may change whatever it likes in its own tree. ``site.node`` names the mutant
(its line and the function around it).

The helpers below find statements, calls and names by their shape; they judge the reference's
source only (nothing is imported or run).
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "Site",
    "become",
    "callee",
    "calls",
    "enclosing_function",
    "expr_of",
    "functions",
    "insert_import",
    "is_lockish",
    "lock_factory",
    "method_call",
    "parents",
    "splice",
    "statements",
    "with_load",
]

BODY_FIELDS = ("body", "orelse", "finalbody")


@dataclass
class Site:
    """One place an operator applies to: ``mutate()`` changes the tree there; ``node`` names the mutant."""

    node: ast.AST
    mutate: Callable[[], None]
    what: str = ""


def statements(tree: ast.AST) -> Iterator[tuple[list[ast.stmt], ast.stmt]]:
    """Every statement with the list that holds it (a body, an ``else``, a ``finally``, a handler's body)."""
    for node in ast.walk(tree):
        for name in BODY_FIELDS:
            body = getattr(node, name, None)
            if isinstance(body, list):
                for stmt in list(body):
                    if isinstance(stmt, ast.stmt):
                        yield body, stmt


def splice(body: list[ast.stmt], stmt: ast.stmt, replacement: list[ast.stmt]) -> None:
    """Replace ``stmt`` in ``body`` by ``replacement`` (a ``pass`` where the body would be empty)."""
    index = next(i for i, s in enumerate(body) if s is stmt)
    body[index : index + 1] = replacement
    if not body:
        body.append(ast.Pass())


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def enclosing_function(node: ast.AST, up: dict[ast.AST, ast.AST]) -> str:
    """The qualified name of the function (or class) at or around ``node``; ``<module>`` at the top."""
    names = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else []
    while node in up:
        node = up[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.append(node.name)
    return ".".join(reversed(names)) or "<module>"


def callee(call: ast.Call) -> str:
    """The called name's last part: ``Process`` for ``Process(...)`` and ``multiprocessing.Process(...)``."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def calls(tree: ast.AST, *names: str) -> Iterator[ast.Call]:
    """Every call of one of ``names`` (a function or a method, by its last part)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and callee(node) in names:
            yield node


def method_call(stmt: ast.stmt, *methods: str) -> ast.Call | None:
    """The call when ``stmt`` is an expression statement ``receiver.method(...)``."""
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        if isinstance(func, ast.Attribute) and func.attr in methods:
            return stmt.value
    return None


def is_lockish(expr: ast.expr) -> bool:
    """Whether ``expr`` looks like a lock: a name with lock/mutex in it, ``x.get_lock()``, ``Lock()``."""
    if isinstance(expr, ast.Call):
        return callee(expr) in ("get_lock", "Lock", "RLock") or is_lockish(expr.func)
    if isinstance(expr, ast.Name):
        name = expr.id.lower()
    elif isinstance(expr, ast.Attribute):
        name = expr.attr.lower()
    else:
        return False
    return "lock" in name or "mutex" in name


def lock_factory(tree: ast.AST) -> ast.expr | None:
    """A copy of the expression that creates the module's lock (``Lock()``, ``multiprocessing.Lock()``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and callee(node) in ("Lock", "RLock"):
            return copy.deepcopy(node)
    return None


def become(node: ast.AST, new: ast.AST) -> None:
    """Turn ``node`` into ``new`` in place (where the operator holds the node but not its parent)."""
    node.__class__ = new.__class__
    node.__dict__.clear()
    node.__dict__.update(new.__dict__)


def expr_of(source: str) -> ast.expr:
    """An expression node from source text."""
    node = ast.parse(source, mode="eval").body
    return node


def with_load(expr: ast.expr) -> ast.expr:
    """A copy of ``expr`` (an assignment target) that reads instead of writes."""
    return expr_of(ast.unparse(expr))


def insert_import(tree: ast.Module, statement: str) -> None:
    """Add ``statement`` (an import) at the top, after the docstring and ``__future__`` imports."""
    index = 0
    for index, stmt in enumerate(tree.body):  # noqa: B007 - the index past the preamble is what we want
        docstring = isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
        future = isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
        if not (docstring and index == 0) and not future:
            break
    else:
        index = len(tree.body)
    tree.body[index:index] = ast.parse(statement).body
