"""The code's shape, held: which process each folder's code runs in, and how big its parts may grow.

- ``grader/inside/`` runs in the student's processes and imports nothing of ``grader``;
- ``grader/grading/`` and ``grader/mutation/`` are the controller: they never import the pytest side
  (``checks``, ``evidence``, ``diagnosis``, ``plugin``, ``pytest_process``) or the sandbox host, not even through another module;
- ``grader/model/`` and ``grader/processes.py`` are the ground floor: they import nothing of grader
  but themselves; ``grader/served.py`` (the sandboxes' fork server, asked for and started) only ``grader/processes.py``;
- the authors' namespaces ``grader.checks`` and ``grader.evidence`` have pinned public names;
- no module over 600 lines, no function over 60.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "grader"
MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """Every grader module ``name`` imports, at any level of its code (package ``__init__`` files included)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        first = 1  # importing a.b.c runs a/__init__ and a/b/__init__ ...
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
                first = len(anchor)  # ... but a relative import runs no package above its own
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            parts = target.split(".")
            for i in range(first, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in MODULES and prefix != name:
                    found.add(prefix)
    return found


def _closure(name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for target in _imports(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    seen.discard(name)
    return seen


def _under(folder: str) -> list[str]:
    return [m for m in MODULES if m == folder or m.startswith(folder + ".")]


@pytest.mark.parametrize("module", _under("grader.inside"))
def test_inside_imports_nothing_of_grader(module: str) -> None:
    outside = {m for m in _imports(module) if not m.startswith("grader.inside")}
    assert not outside, f"{module} runs in the student's processes but imports {sorted(outside)}"


@pytest.mark.parametrize("module", [*_under("grader.grading"), *_under("grader.mutation")])
def test_controller_never_reaches_the_pytest_side_or_the_sandbox(module: str) -> None:
    forbidden = (
        "grader.checks", "grader.evidence", "grader.diagnosis", "grader.sandbox", "grader.plugin", "grader.pytest_process"
    )
    reached = sorted(m for m in _closure(module) if m.startswith(forbidden))
    assert not reached, f"{module} is controller code but imports (maybe through others) {reached}"


@pytest.mark.parametrize("module", [*_under("grader.model"), "grader.processes"])
def test_ground_floor_imports_nothing_above_it(module: str) -> None:
    allowed = ("grader.model",) if module.startswith("grader.model") else ()
    above = sorted(m for m in _closure(module) if m != "grader" and not m.startswith(allowed))
    assert not above, f"{module} is plain data or process handling every tier uses, but imports {sorted(above)}"


def test_the_sandboxes_fork_server_and_its_client_stand_apart() -> None:
    """The fork server is a program of the standard library alone; its client, which the controller uses to start it,
    imports nothing of the grader but process handling (not the sandbox host)."""
    assert _closure("grader.sandbox.fork_server") == set()
    assert _closure("grader.served") - {"grader"} == {"grader.processes"}


@pytest.mark.parametrize("module", _under("grader.exporters"))
def test_exporters_read_only_the_result_model(module: str) -> None:
    other = sorted(m for m in _closure(module) if m != "grader" and not m.startswith(("grader.model", "grader.exporters")))
    assert not other, f"{module} is an exporter over the result model but imports {other}"


def test_the_controller_process_loads_no_checking_code() -> None:
    code = (
        "import sys, grader.cli, grader.grading.batch, grader.grading.autograder, grader.mutation.run, grader.mutation.report\n"
        "print(sorted(m for m in sys.modules if m.startswith(('grader.checks', 'grader.evidence', "
        "'grader.diagnosis', 'grader.sandbox', 'grader.plugin', 'grader.pytest_process'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"importing the CLI and the controller loaded {out.strip()}"


def test_modules_stay_small() -> None:
    big = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_functions_stay_small() -> None:
    long: list[str] = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno is not None:
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name} ({length} lines)")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_authors_namespaces_are_pinned() -> None:
    """What an assignment author imports; a change here is a change of the public API (docs/authoring.md)."""
    import grader.checks
    import grader.evidence

    assert sorted(grader.checks.__all__) == [
        "CheckFailed", "CheckTimedOut", "GREETING", "Submission", "brief", "expect", "expect_children_joined",
        "expect_greeting", "expect_hello_calls", "expect_no_import_side_effects", "expect_no_lock_order_cycle",
        "expect_random_delays", "expect_sleeps_for_delay", "expect_threads_joined", "fail", "first_difference",
        "line_problems", "same", "same_items", "sequence_problem",
    ]
    assert sorted(grader.evidence.__all__) == [
        "Call", "ChildProcess", "ChildThread", "Ending", "Line", "Opaque", "Run", "StudentError", "ThreadRun",
        "max_overlap",
    ]
    for namespace in (grader.checks, grader.evidence):
        for name in namespace.__all__:
            assert hasattr(namespace, name), f"{namespace.__name__}.__all__ names {name}, which it does not define"


@pytest.mark.parametrize("path", sorted((PACKAGE.parent / "assignments").glob("*/test_*.py")), ids=lambda p: p.parent.name)
def test_bundled_checks_import_only_the_authors_namespaces(path: Path) -> None:
    allowed = ("grader.checks", "grader.evidence")
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("grader"):
            assert (node.module or "").startswith(allowed), f"{path.name} imports {node.module}"
