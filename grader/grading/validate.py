"""``grader validate``: find the mistakes of an assignment before a class is graded with it.

Runs in the controller. The checks, drivers and config are the instructor's; a
mistake in them must never cost a student points, so it is found here, each
as one short block naming the file and line (:mod:`grader.model.problems`):

1. the config: ``assignment.toml`` loads (:meth:`Assignment.load`: known keys,
   types, points >= 0, visibility values), and names only ``[assignment]`` and
   ``[checks.NAME]`` tables, each ``NAME`` a check that exists;
2. the files, read with :mod:`ast` (nothing runs): every check file and
   ``drivers.py`` compiles; every ``submission.drive("name")`` /
   ``shared_drive("name")`` names a driver ``drivers.py`` defines; every
   ``probes=[...]`` names known probes; ``@pytest.mark.points`` and
   ``@pytest.mark.visibility`` have valid values; the points add up to more
   than 0 (a warning when every check is hidden); the clause table
   (``clauses.toml``, :mod:`grader.model.clauses`), when there is one, names
   only checks that exist and gives every clause a check or a reason (a
   warning for a check that judges no clause);
3. the checks import: pytest collects them (``--collect-only``, in a child
   process with the grader's plugin, so an error at import comes back as one
   block with its file and line);
4. with a reference solution, it is graded like a student's and must get full
   marks: each check it loses points on is listed with its message.

The pytest side is only reached through a child process (the layering rule of
``grader/grading``); the probe names come from :mod:`grader.inside.events`, plain data.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.grading.grade import grade_submission, pytest_command, pytest_environment
from grader.inside import events
from grader.model.assignment import CONFIG_NAME, Assignment, AssignmentError, bundled_dir
from grader.model.clauses import CLAUSES_NAME, clause_problems, load_clauses, unjudging_checks
from grader.model.problems import AssignmentProblem, driver_names, no_such_driver, problems_of, source_line
from grader.model.results import VISIBILITIES, SubmissionResult
from grader.mutation.config import table_problems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10
    import tomli as tomllib

__all__ = [
    "Validation",
    "config_problems",
    "default_reference",
    "explain_config",
    "gate",
    "locate",
    "report_assignment_errors",
    "validate",
    "validate_command",
]

COLLECT_TIMEOUT = 180.0
DRIVE_METHODS = ("drive", "shared_drive")
RUN_METHODS = ("call", "drive", "shared_call", "shared_drive")
TOP_LEVEL = ("assignment", "checks", "mutants")


@dataclass
class Validation:
    """What ``grader validate`` found: the assignment's errors and warnings, as rendered blocks."""

    name: str
    folder: Path
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checks: int = 0
    points: float | None = None
    reference: Path | None = None
    reference_result: SubmissionResult | None = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """The final line."""
        if not self.valid:
            count = len(self.problems)
            return (
                f"{self.name}: {count} assignment error{'s' if count != 1 else ''} in {self.folder}; fix "
                f"{'them' if count != 1 else 'it'} before grading (the checks, drivers and config are the "
                "instructor's: students would lose points for them)"
            )
        points = f", {self.points:g} points" if self.points is not None else ""
        text = f"{self.name}: valid ({self.checks} check{'s' if self.checks != 1 else ''}{points}"
        result = self.reference_result
        if self.reference is not None and result is not None:
            return text + f"; the reference {self.reference.name} gets full marks, {result.score:g}/{result.max_score:g})"
        return text + "; no reference solution graded: pass REFERENCE to check that one gets full marks)"

    def render(self) -> str:
        return "\n".join([*self.problems, *self.warnings, self.summary()]) + "\n"


def locate(name_or_path: str) -> Path:
    """The folder of an assignment (a path, or a bundled assignment's name), without loading its config."""
    candidate = Path(name_or_path)
    if (candidate / CONFIG_NAME).is_file():
        return candidate.resolve()
    bundled = bundled_dir() / name_or_path
    if "/" not in name_or_path and (bundled / CONFIG_NAME).is_file():
        return bundled
    if candidate.is_dir():
        raise AssignmentError(f"{name_or_path} is not an assignment folder: it has no {CONFIG_NAME}")
    raise AssignmentError(f"unknown assignment {name_or_path!r} (give a bundled assignment's name or a folder path)")


def default_reference(folder: Path, module_file: str) -> Path | None:
    """``reference/<module>`` beside the assignment folder (as ``grader new`` lays it out), if it exists."""
    places = [folder.parent / "reference" / module_file]
    if folder.parent == bundled_dir():
        places.append(bundled_dir().parent / "reference" / module_file)
    return next((p for p in places if p.is_file()), None)


# -- 1. the config -----------------------------------------------------------------------
def _toml_line(text: str, key: tuple[str, ...]) -> int | None:
    """The line of ``key`` (a TOML path such as ``("checks", "test_x", "points")``) in the config's text."""
    if not key:
        return None
    lines = text.splitlines()
    table, name = (key[:-1], key[-1]) if key[0] == "assignment" or len(key) == 3 else (key, None)
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(f"[\"']?{re.escape(k)}[\"']?" for k in table) + r"\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return None
    if name is None:
        return start + 1
    for i in range(start + 1, len(lines)):
        if lines[i].lstrip().startswith("["):
            break
        if re.match(rf"^\s*[\"']?{re.escape(name)}[\"']?\s*=", lines[i]):
            return i + 1
    return start + 1


def _config(folder: Path) -> tuple[Assignment | None, list[AssignmentProblem]]:
    path = folder / CONFIG_NAME
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        assignment = Assignment.load(folder)
    except AssignmentError as exc:
        what = str(exc).split(f"{path}: ", 1)[-1]
        found = re.search(r"at line (\d+)", what)
        line = int(found.group(1)) if found else _toml_line(text, exc.key)
        return None, [AssignmentProblem(CONFIG_NAME, line, what, source_line(path, line))]
    data = tomllib.loads(text)
    problems = []
    for key in sorted(set(data) - set(TOP_LEVEL)):
        mention = re.compile(rf"^\s*(\[\s*[\"']?{re.escape(key)}[\"']?\s*[\].]|[\"']?{re.escape(key)}[\"']?\s*=)")
        line = next((i + 1 for i, s in enumerate(text.splitlines()) if mention.match(s)), None)
        problems.append(
            AssignmentProblem(
                CONFIG_NAME,
                line,
                f"unknown table or key {key!r} at the top level: the config has [assignment], [checks.NAME] "
                "and [mutants] tables only, so this is ignored (a typo?)",
                source_line(path, line),
            )
        )
    if "mutants" in data:
        for key, what in table_problems(data["mutants"], folder):
            line = next((i + 1 for i, s in enumerate(text.splitlines()) if key[-1] in s), None)
            problems.append(AssignmentProblem(CONFIG_NAME, line, what, source_line(path, line)))
    return assignment, problems


def config_problems(folder: Path) -> list[str]:
    """The problems of ``folder``'s ``assignment.toml``, as blocks (an empty list when it is sound)."""
    return [p.render() for p in _config(Path(folder).resolve())[1]]


# -- 2. the files, read with ast -------------------------------------------------------------
@dataclass
class _Check:
    file: str
    line: int
    points: float | None = 1.0
    visibility: str = "visible"


@dataclass
class _Scan:
    checks: dict[str, _Check] = field(default_factory=dict)
    problems: list[AssignmentProblem] = field(default_factory=list)
    drives: list[tuple[str, int, str]] = field(default_factory=list)
    """``(file, line, driver name)`` of every drive/shared_drive call with a literal name."""


def _literal(node: ast.expr) -> object:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ...


def _marker(decorator: ast.expr) -> tuple[str, object] | None:
    """``("points", 2)`` for ``@pytest.mark.points(2)`` (``...`` for a value that is not a literal)."""
    if not isinstance(decorator, ast.Call) or not isinstance(decorator.func, ast.Attribute):
        return None
    owner = decorator.func.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == "mark"):
        return None
    args = list(decorator.args) + [k.value for k in decorator.keywords]
    return decorator.func.attr, _literal(args[0]) if args else ...


def _scan_function(file: str, node: ast.FunctionDef | ast.AsyncFunctionDef, scan: _Scan) -> None:
    check = _Check(file, node.lineno)
    for decorator in node.decorator_list:
        found = _marker(decorator)
        if found is None:
            continue
        kind, value = found
        line = decorator.lineno
        if kind == "points":
            if type(value) in (int, float) and value >= 0:  # type: ignore[operator]
                check.points = float(value)  # type: ignore[arg-type]
            elif value is ...:
                check.points = None
            else:
                scan.problems.append(
                    AssignmentProblem(file, line, f"{node.name}: points must be a number >= 0, got {value!r}")
                )
        elif kind == "visibility":
            if value in VISIBILITIES:
                check.visibility = str(value)
            elif value is not ...:
                scan.problems.append(
                    AssignmentProblem(
                        file, line, f"{node.name}: visibility must be one of {', '.join(VISIBILITIES)}, got {value!r}"
                    )
                )
    scan.checks[node.name] = check


def _probe_names(call: ast.Call) -> list[object]:
    for keyword in call.keywords:
        if keyword.arg == "probes":
            value = _literal(keyword.value)
            if isinstance(value, (list, tuple)):
                return list(value)
            if isinstance(value, str):
                return [value]
    return []


def _scan_call(file: str, call: ast.Call, scan: _Scan) -> None:
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in RUN_METHODS:
        return
    first = call.args[0] if call.args else None
    if call.func.attr in DRIVE_METHODS and isinstance(first, ast.Constant) and isinstance(first.value, str):
        scan.drives.append((file, call.lineno, first.value))
    for name in _probe_names(call):
        if name not in events.PROBES:
            scan.problems.append(
                AssignmentProblem(
                    file,
                    call.lineno,
                    f"the check asks for the probe {name!r}, which does not exist; "
                    f"known probes: {', '.join(sorted(events.PROBES))}",
                )
            )


def _scan_files(folder: Path, files: list[Path]) -> _Scan:
    scan = _Scan()
    for path in files:
        name = path.name
        try:
            source = path.read_bytes()
            compile(source, name, "exec", dont_inherit=True)  # compiles only: nothing runs
            tree = ast.parse(source, filename=name)
        except SyntaxError as exc:
            scan.problems.append(AssignmentProblem(name, exc.lineno, f"SyntaxError: {exc.msg}", (exc.text or "").strip()))
            continue
        except (OSError, ValueError) as exc:
            scan.problems.append(AssignmentProblem(name, None, f"cannot be read: {exc}"))
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                _scan_function(name, node, scan)
        for call in ast.walk(tree):
            if isinstance(call, ast.Call):
                _scan_call(name, call, scan)
    for problem in scan.problems:
        if not problem.code:
            scan.problems[scan.problems.index(problem)] = AssignmentProblem(
                problem.file, problem.line, problem.what, source_line(folder / problem.file, problem.line)
            )
    return scan


def _driver_problems(assignment: Assignment, scan: _Scan) -> list[AssignmentProblem]:
    drivers = assignment.drivers
    folder = assignment.path
    if drivers is None:
        return [
            AssignmentProblem(
                file,
                line,
                f"the check calls the driver {name!r}, but {CONFIG_NAME} names no drivers file "
                '(add drivers = "drivers.py" to its [assignment] table)',
                source_line(folder / file, line),
            )
            for file, line, name in scan.drives
        ]
    try:
        compile(drivers.read_bytes(), drivers.name, "exec", dont_inherit=True)
        names = driver_names(drivers)
    except SyntaxError as exc:
        return [AssignmentProblem(drivers.name, exc.lineno, f"SyntaxError: {exc.msg}", (exc.text or "").strip())]
    except (OSError, ValueError) as exc:
        return [AssignmentProblem(drivers.name, None, f"cannot be read: {exc}")]
    return [
        AssignmentProblem(
            file,
            line,
            no_such_driver(name, drivers),
            source_line(folder / file, line),
        )
        for file, line, name in scan.drives
        if name not in names
    ]


def _points_problems(assignment: Assignment, scan: _Scan, validation: Validation) -> list[AssignmentProblem]:
    problems = []
    text = (assignment.path / CONFIG_NAME).read_text(encoding="utf-8", errors="replace")
    for name, config in assignment.checks.items():
        check = scan.checks.get(name)
        if check is None:
            line = _toml_line(text, ("checks", name))
            close = difflib.get_close_matches(name, list(scan.checks), n=1)
            known = f"did you mean {close[0]!r}?" if close else "checks: " + (", ".join(sorted(scan.checks)) or "none")
            problems.append(
                AssignmentProblem(
                    CONFIG_NAME, line, f"[checks.{name}] names no check of the assignment, so it changes nothing ({known})",
                    source_line(assignment.path / CONFIG_NAME, line),
                )
            )
            continue
        if config.points is not None:
            check.points = config.points
        if config.visibility:
            check.visibility = config.visibility
    validation.checks = len(scan.checks)
    if not scan.checks:
        what = "the assignment has no checks (test_*.py files with test_ functions)"
        problems.append(AssignmentProblem(assignment.path.name, None, what))
        return problems
    points = [c.points for c in scan.checks.values()]
    if all(p is not None for p in points):
        validation.points = sum(p for p in points if p is not None)
        if validation.points <= 0:
            problems.append(AssignmentProblem(CONFIG_NAME, None, "the checks are worth 0 points in all: nothing can be graded"))
    if all(c.visibility == "hidden" for c in scan.checks.values()):
        validation.warnings.append(
            AssignmentProblem(
                CONFIG_NAME, None, "every check is hidden: students will see a score and no check, nothing to act on",
                level="warning",
            ).render()
        )
    return problems


def _clauses_problems(folder: Path, scan: _Scan, validation: Validation) -> list[AssignmentProblem]:
    """The clause table's problems (none without a table); a warning for each check it leaves out."""
    try:
        clauses = load_clauses(folder)
    except AssignmentError as exc:
        return [AssignmentProblem(CLAUSES_NAME, exc.line, exc.what, source_line(folder / CLAUSES_NAME, exc.line))]
    if clauses is None:
        return []
    names = set(scan.checks)
    for name in unjudging_checks(clauses, names):
        what = f"{name} judges no clause of {CLAUSES_NAME}: add the clause it checks, or name it under one"
        validation.warnings.append(AssignmentProblem(CLAUSES_NAME, None, what, level="warning").render())
    return [
        AssignmentProblem(CLAUSES_NAME, line, what, source_line(folder / CLAUSES_NAME, line))
        for line, what in clause_problems(clauses, names)
    ]


# -- 3. the checks import ------------------------------------------------------------------
def _collect(assignment: Assignment) -> list[str]:
    """Collect the checks with pytest in a child process; the assignment errors it met, as blocks."""
    submission = assignment.starter if assignment.starter.is_file() else assignment.path
    with tempfile.TemporaryDirectory(prefix="grader-validate-") as tmp:
        results = Path(tmp) / "results.json"
        command = [*pytest_command(assignment, submission, results), "--collect-only"]
        try:
            done = subprocess.run(
                command, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                env=pytest_environment(), cwd=tmp, timeout=COLLECT_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            what = f"collecting the checks took longer than {COLLECT_TIMEOUT:g} s (a check file that waits at import?)"
            return [AssignmentProblem(assignment.path.name, None, what).render()]
        found: list[str] = []
        if results.is_file():
            try:
                found = problems_of(json.loads(results.read_text(encoding="utf-8")).get("metadata") or {})
            except (ValueError, AttributeError):
                found = []
        if found or done.returncode in (0, 5):
            return found
        said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        last = said[-1] if said else f"pytest ended with exit code {done.returncode}"
        return [AssignmentProblem(assignment.path.name, None, f"pytest could not collect the checks: {last}").render()]


# -- 4. the reference gets full marks ----------------------------------------------------------------
def _reference_problems(
    assignment: Assignment, reference: Path, scan: _Scan, check_workers: int, unsafe: bool
) -> tuple[SubmissionResult, list[str]]:
    result = grade_submission(assignment, reference, student="reference", check_workers=check_workers, unsafe=unsafe)
    found = problems_of(result.metadata)
    if found:
        return result, found
    if result.error:
        detail = " ".join(result.error_detail.split())[-300:]
        what = f"the reference solution {reference} could not be graded: {result.error}" + (f" ({detail})" if detail else "")
        return result, [AssignmentProblem(reference.name, None, what).render()]
    problems = []
    for check in result.checks:
        if check.passed:
            continue
        where = scan.checks.get(check.id)
        file, line = (where.file, where.line) if where else (assignment.path.name, None)
        message = " ".join((check.message.strip().splitlines() or [""])[0].split())
        what = (
            f"the reference solution {reference.name} lost {check.max_points - check.points:g} of "
            f"{check.max_points:g} point(s) on {check.id} ({check.status.label}): {message[:400]}"
        )
        problems.append(AssignmentProblem(file, line, what, source_line(assignment.path / file, line)).render())
    return result, problems


def validate(
    folder: Path, reference: Path | None = None, *, default: bool = True, check_workers: int = 1, unsafe: bool = False
) -> Validation:
    """Validate the assignment in ``folder`` and, when given (or found beside it with ``default``), its reference."""
    folder = Path(folder).resolve()
    validation = Validation(name=folder.name, folder=folder)
    assignment, config_problems = _config(folder)
    validation.problems.extend(p.render() for p in config_problems)
    if assignment is None:
        return validation
    validation.name = assignment.name
    scan = _scan_files(folder, sorted(folder.glob("test_*.py")))
    static = [
        *scan.problems,
        *_driver_problems(assignment, scan),
        *_points_problems(assignment, scan, validation),
        *_clauses_problems(folder, scan, validation),
    ]
    validation.problems.extend(p.render() for p in static)
    for block in _collect(assignment):
        if block not in validation.problems:
            validation.problems.append(block)
    if reference is None and default:
        reference = default_reference(folder, assignment.module_file)
    if reference is None or not validation.valid:
        return validation
    validation.reference = Path(reference).resolve()
    result, problems = _reference_problems(assignment, validation.reference, scan, check_workers, unsafe)
    validation.reference_result = result
    validation.problems.extend(problems)
    return validation


# -- for the CLI -----------------------------------------------------------------------------
def validate_command(name: str, reference: str | None, default: bool, check_workers: int, unsafe: bool) -> bool:
    """``grader validate``: print the report; whether the assignment is valid. Raises ``FileNotFoundError``
    for a reference that does not exist and :class:`AssignmentError` for an assignment that cannot be found."""
    folder = locate(name)
    path = Path(reference) if reference else None
    if path is not None and not path.is_file():
        raise FileNotFoundError(f"reference solution not found: {path}")
    validation = validate(folder, path, default=default, check_workers=check_workers, unsafe=unsafe)
    sys.stdout.write(validation.render())
    return validation.valid


def gate(assignment: Assignment, reference: Path, check_workers: int, unsafe: bool) -> str | None:
    """``grade --reference``: validate first; ``None`` when sound, else why no one is graded (the blocks go to stderr)."""
    if not reference.is_file():
        return f"reference solution not found: {reference}"
    print(f"Validating {assignment.name} with the reference {reference} before grading...", file=sys.stderr)
    validation = validate(assignment.path, reference, check_workers=check_workers, unsafe=unsafe)
    if validation.valid:
        return None
    print(*validation.problems, sep="\n", file=sys.stderr)
    return f"not grading the class: {validation.summary()}"


def report_assignment_errors(results: list[SubmissionResult]) -> bool:
    """Print the assignment errors met while grading (each once) on stderr; whether there were any."""
    seen: list[str] = []
    for result in results:
        seen.extend(p for p in problems_of(result.metadata) if p not in seen)
    if seen:
        print(*seen, sep="\n", file=sys.stderr)
        print(
            "grader: the assignment is broken (its checks, drivers or config), not the submission: nothing was graded "
            "on it; fix it (`grader validate`) and grade again",
            file=sys.stderr,
        )
    return bool(seen)


def explain_config(name: str, error: AssignmentError) -> bool:
    """For a command that could not load ``name``: print its config's problems as blocks on stderr, if that is why."""
    if not error.key and "not valid TOML" not in str(error):
        return False
    try:
        blocks = config_problems(locate(name))
    except (AssignmentError, OSError):
        return False
    print(*blocks, sep="\n", file=sys.stderr)
    return bool(blocks)
