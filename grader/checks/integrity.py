"""A static scan of a submission for code that reaches into the grader. Runs in the pytest process.

The probes that record the evidence run inside the student's processes, and a
student who reads them can try to forge what they record. :func:`scan` reads
every ``.py`` file of a submission with :mod:`ast` (nothing is imported or run)
before any check runs it, and names each use of what a concurrency exercise
never needs and a forger does: the grader's modules (``grader_inside``,
``grader_boot``, probe names), ``sys.modules``, assigning attributes of the
``os``, ``multiprocessing``, ``threading``, ``time``, ``sys`` and ``builtins``
modules (also through ``setattr``), private attributes of concurrency objects
(``_Popen``, ``_target``, ``_semlock``, ...), ``compile``/``exec``/``eval``,
``ctypes``, ``gc`` object scans, frame walks (``sys._getframe``,
``inspect.currentframe``), audit hooks, trace and profile hooks and
``/proc/self/fd``. Each flag names the file and line and says why the evidence
cannot be trusted; the plugin fails every check that ran the code and lists
the flags for the instructor. No correct or honestly buggy solution of the
bundled corpus is flagged (tests/test_forgery.py holds it to that).
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["scan"]

MAX_FILES = 200
MAX_BYTES = 2 * 1024 * 1024
MAX_FLAGS = 8
GRADER_NAMES = ("grader_inside", "grader_boot", "grader_drivers", "_grader_", "probe_locks", "probe_pools",
                "probe_pipes", "probe_queues", "probe_threads", "evidence.jsonl", "GRADER_SANDBOX")
PATCHED_MODULES = frozenset({"os", "posix", "multiprocessing", "threading", "_thread", "time", "sys", "builtins",
                             "queue", "_multiprocessing"})
PRIVATE_ATTRIBUTES = frozenset({
    "_Popen", "_popen", "_target", "_args", "_kwargs", "_semlock", "_bootstrap", "_is_stopped", "_tstate_lock",
    "_children", "_identity", "_parent_pid", "_make_methods", "_after_fork", "_bootstrap_inner",
    "_current_process", "_getframe", "_current_frames",
})
"""Private attributes of ``threading``, ``multiprocessing`` and ``sys`` objects that only a forger touches."""
SELF_PRIVATE = frozenset({"_pool", "_cache", "_ident", "_started", "_state", "_handle", "_reader", "_writer"})
"""Private attributes a student may well give their own objects: flagged unless on ``self``."""
CALLS = {
    "compile": "compiles code at run time",
    "exec": "runs code from a string",
    "eval": "evaluates code from a string",
    "__import__": "imports a module by a computed name",
    "sys._getframe": "walks the call stack's frames",
    "sys._current_frames": "walks the threads' frames",
    "inspect.currentframe": "walks the call stack's frames",
    "inspect.stack": "walks the call stack's frames",
    "inspect.getouterframes": "walks the call stack's frames",
    "gc.get_objects": "searches every object of the process",
    "gc.get_referrers": "searches the objects that refer to an object",
    "gc.get_referents": "searches the objects an object refers to",
    "sys.addaudithook": "installs an audit hook",
    "sys.settrace": "installs a trace hook",
    "sys.setprofile": "installs a profile hook",
    "threading.settrace": "installs a trace hook in every thread",
    "threading.setprofile": "installs a profile hook in every thread",
    "importlib.import_module": "imports a module by a computed name",
    "importlib.reload": "reloads a module",
    "os.dup2": "replaces an open file descriptor",
    "os.fdopen": "opens a file by its descriptor number",
}
MODULES = {"ctypes": "uses ctypes (raw memory)", "_ctypes": "uses ctypes (raw memory)",
           "importlib": "imports modules by computed names", "gc": "inspects the garbage collector's objects",
           "fcntl": "inspects open file descriptors"}
TRUST = "evidence of what the code did cannot be trusted; an instructor should review it"


def scan(path: Path) -> list[str]:
    """Integrity flags for the submission at ``path`` (a ``.py`` file or a folder): one sentence each."""
    flags: list[str] = []
    for file, label in _files(Path(path)):
        try:
            data = file.read_bytes()[:MAX_BYTES]
            tree = ast.parse(data, filename=label)
        except (OSError, SyntaxError, ValueError, RecursionError):
            continue  # a file that does not parse fails its checks on its own
        for line, why in sorted(set(_Scanner().run(tree))):
            flags.append(f"the submission {why} ({label} line {line}): {TRUST}")
            if len(flags) >= MAX_FLAGS:
                return flags
    return flags


def _files(path: Path) -> Iterator[tuple[Path, str]]:
    if path.is_file():
        yield path, path.name
        return
    count = 0
    for root, dirs, names in os.walk(path, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(names):
            file = Path(root) / name
            if name.endswith(".py") and not file.is_symlink() and file.is_file():
                count += 1
                if count > MAX_FILES:
                    return
                yield file, str(file.relative_to(path))


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


class _Scanner(ast.NodeVisitor):
    """Collects (line, why) for every pattern of the module docs."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {}  # local name -> module or module.name it stands for
        self.prose: set[int] = set()

    def run(self, tree: ast.AST) -> list[tuple[int, str]]:
        for node in ast.walk(tree):  # aliases first, wherever they are imported
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    self.aliases[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        for node in ast.walk(tree):  # docstrings and bare strings are prose, not values
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
                self.prose.add(id(node.value))
        self.visit(tree)
        return self.found

    def _full(self, node: ast.AST) -> str | None:
        name = _dotted(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        base = self.aliases.get(head, head)
        return f"{base}.{rest}" if rest else base

    def _add(self, node: ast.AST, why: str) -> None:
        self.found.append((getattr(node, "lineno", 0), why))

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802 - ast's name
        for alias in node.names:
            self._module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802 - ast's name
        if node.module and not node.level:
            self._module(node, node.module)
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in CALLS or alias.name in PRIVATE_ATTRIBUTES:
                    self._add(node, f"imports {full}")

    def _module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top == "grader" or any(mark in name for mark in GRADER_NAMES):
            self._add(node, f"imports the grader's module {name}")
        elif top in MODULES:
            self._add(node, MODULES[top])

    def visit_Constant(self, node: ast.Constant) -> None:  # noqa: N802 - ast's name
        if isinstance(node.value, str) and id(node) not in self.prose:
            text = node.value
            mark = next((m for m in GRADER_NAMES if m in text), None)
            if mark or "sys.modules" in text or "/proc/self/fd" in text or "/dev/fd" in text:
                self._add(node, f"names {(mark or text)[:40]!r}")
            elif "/proc/" in text and "/fd" in text:
                self._add(node, "lists a process's open files")

    def visit_Attribute(self, node: ast.Attribute) -> None:  # noqa: N802 - ast's name
        full = self._full(node)
        if full == "sys.modules":
            self._add(node, "uses sys.modules (the loaded modules, the grader's included)")
        elif node.attr in PRIVATE_ATTRIBUTES or (
            node.attr in SELF_PRIVATE and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):
            self._add(node, f"uses the private attribute {node.attr} of a concurrency object")
        elif full in CALLS:
            self._add(node, CALLS[full])
        elif isinstance(node.ctx, ast.Store) and full and full.split(".")[0] in PATCHED_MODULES and "." in full:
            self._add(node, f"assigns {full}, replacing part of a module the grader observes")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # noqa: N802 - ast's name
        full = self._full(node.func)
        if full in ("setattr", "delattr") and node.args:
            target = self._full(node.args[0])
            if target and (target.split(".")[0] in PATCHED_MODULES or target.startswith("multiprocessing")):
                self._add(node, f"uses {full}() on {target}, replacing part of a module the grader observes")
        if full in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value in PRIVATE_ATTRIBUTES:
                self._add(node, f"uses the private attribute {name.value} of a concurrency object")
        if full in CALLS and isinstance(node.func, ast.Name):
            self._add(node, CALLS[full])
        if full in ("vars", "globals") and node.args:
            self._add(node, f"uses {full}() on another namespace")
        self.generic_visit(node)
