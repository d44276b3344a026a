"""``grader new``: a new assignment folder and its reference solution, from the templates in ``grader/scaffold/``."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TEMPLATES", "ScaffoldError", "create_assignment"]

TEMPLATES = Path(__file__).resolve().parent.parent / "scaffold"


class ScaffoldError(ValueError):
    """The assignment cannot be created there (one line for the user); nothing was written."""


def create_assignment(name: str, parent: Path) -> tuple[Path, Path]:
    """Create ``parent/NAME/`` (config, student README, starter, checks) and ``parent/reference/NAME.py``.

    ``parent`` is created with its parents when missing. Refuses a name that is not a module name and
    an assignment folder or solution that exists already. Returns the folder and the solution.
    """
    if not name.isidentifier() or name.startswith("_"):
        raise ScaffoldError(f"{name!r} cannot be an assignment name: use letters, digits and _ (a Python module name)")
    folder = parent / name
    solution = parent / "reference" / f"{name}.py"
    for path in (folder, solution):
        if path.exists() or path.is_symlink():
            raise ScaffoldError(f"{path} already exists; nothing was written (choose another name or --dir)")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScaffoldError(f"cannot create the folder {parent}: {exc.strerror or exc}") from None
    values = {"name": name, "title": name.replace("_", " ").capitalize()}

    def render(template: str) -> str:
        return (TEMPLATES / template).read_text(encoding="utf-8").format(**values)

    (folder / "starter").mkdir(parents=True)
    (folder / "assignment.toml").write_text(render("assignment.toml.tmpl"), encoding="utf-8")
    (folder / "README.md").write_text(render("README.md.tmpl"), encoding="utf-8")
    (folder / "starter" / f"{name}.py").write_text(render("starter.py.tmpl"), encoding="utf-8")
    (folder / f"test_{name}.py").write_text(render("test_checks.py.tmpl"), encoding="utf-8")
    (folder / "clauses.toml").write_text(render("clauses.toml.tmpl"), encoding="utf-8")
    solution.parent.mkdir(exist_ok=True)
    solution.write_text(render("solution.py.tmpl"), encoding="utf-8")
    return folder, solution
