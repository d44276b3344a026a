"""`grader validate` and the assignment errors of `grader check` / `grader grade`, end to end through the CLI.

Each broken assignment is a copy of a bundled one under tmp_path with one instructor's mistake in it:
the mistake is reported as one short block naming the file and line, exit status 2, never as the
student's fault and never with pytest's internals.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, grader_command

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REFERENCE = ROOT / "reference"
INTERNALS = ("_pytest/", "Traceback (most recent call last)", "pluggy/")


def copy_assignment(tmp_path: Path, name: str = "hello_threads") -> Path:
    folder = tmp_path / "course" / name
    shutil.copytree(ROOT / "assignments" / name, folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def run(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, timeout=timeout)
    for text in (done.stdout, done.stderr):
        for internal in INTERNALS:
            assert internal not in text, f"pytest internals reached the output:\n{text}"
    return done


def edit(path: Path, old: str, new: str, count: int = 1) -> int:
    """Replace ``old`` by ``new`` in ``path``; the (1-based) line of the first replacement."""
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return line


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i + 1 for i, line in enumerate(lines) if needle in line)


def call_line(path: Path, line: int) -> int:
    """The line where the ``submission.`` call that spans ``line`` starts (what a traceback names)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i + 1 for i in range(line - 1, -1, -1) if "submission." in lines[i])


def test_a_driver_name_typo_is_the_assignments_error(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    checks = folder / "test_hello_threads.py"
    line = edit(checks, 'submission.drive("main_with_defaults"', 'submission.drive("main_with_defualts"')
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2, done.stdout
    assert (
        f"assignment error: test_hello_threads.py:{line}: drivers.py has no driver named 'main_with_defualts' "
        "(did you mean 'main_with_defaults'?); known drivers: main_then_wait, mains_then_wait, main_with_defaults"
    ) in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("hello_threads: 1 assignment error in ")

    # graded anyway: the same block, not "hello_threads.py does not define a function named ..."
    graded = run(grader_env, "check", str(folder), str(REFERENCE / "hello_threads.py"), "--check-workers", "1")
    assert graded.returncode == 2
    assert f"assignment error: test_hello_threads.py:{line}: drivers.py has no driver named 'main_with_defualts'" in graded.stderr
    assert "does not define" not in graded.stdout + graded.stderr


def test_a_name_error_at_import_of_a_check_file(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    checks = folder / "test_hello_threads.py"
    line = edit(checks, "\nSEED = 137", "\nTIMES = undefined_thing()\nSEED = 137") + 1
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2
    assert f"assignment error: test_hello_threads.py:{line}: NameError: name 'undefined_thing' is not defined" in done.stdout
    assert f"    {line} | TIMES = undefined_thing()" in done.stdout

    graded = run(grader_env, "check", str(folder), str(REFERENCE / "hello_threads.py"), "--check-workers", "1")
    assert graded.returncode == 2
    assert f"assignment error: test_hello_threads.py:{line}: NameError: name 'undefined_thing' is not defined" in graded.stderr
    assert len(graded.stderr.strip().splitlines()) <= 4, graded.stderr  # one short block and a final line


def test_a_syntax_error_in_drivers_py(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    line = edit(folder / "drivers.py", "def main_with_defaults(student, seed):", "def main_with_defaults(student, seed)")
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2
    assert f"assignment error: drivers.py:{line}: SyntaxError: " in done.stdout


def test_a_name_error_inside_a_check_function(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path, "isolation")
    checks = folder / "test_isolation.py"
    anchor = line_of(checks, "run = _twice_run(submission)")
    lines = checks.read_text(encoding="utf-8").splitlines(keepends=True)
    indent = lines[anchor - 1][: len(lines[anchor - 1]) - len(lines[anchor - 1].lstrip())]
    lines.insert(anchor, f"{indent}foo(run)\n")
    checks.write_text("".join(lines), encoding="utf-8")
    line = anchor + 1
    done = run(grader_env, "validate", str(folder), str(REFERENCE / "isolation.py"), "--check-workers", "1")
    assert done.returncode == 2, done.stdout
    assert f"assignment error: test_isolation.py:{line}: NameError: name 'foo' is not defined" in done.stdout
    assert f"    {line} | foo(run)" in done.stdout
    assert "lost" not in done.stdout  # not reported a second time as the reference losing the points


def test_an_unknown_probe(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    checks = folder / "test_hello_threads.py"
    line = call_line(checks, edit(checks, 'probes=["thread_lifetimes"]', 'probes=["thread_lifetime"]'))
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2
    assert (
        f"assignment error: test_hello_threads.py:{line}: the check asks for the probe 'thread_lifetime', "
        "which does not exist; known probes: close_cycles, futures, late_wakeups, locks, "
    ) in done.stdout


@pytest.mark.parametrize(
    ("addition", "expected"),
    [
        ("timout = 3\n", "assignment.toml:{line}: unknown key(s) in [assignment]: timout"),
        (
            "\n[checks.test_output_lines]\npoints = -1\n",
            "assignment.toml:{line}: [checks.test_output_lines] points must be a number >= 0, got -1",
        ),
        (
            '\n[checks.test_output_lines]\nvisibility = "hiden"\n',
            "assignment.toml:{line}: [checks.test_output_lines] visibility must be one of visible, hidden, "
            "after_due_date, after_published, got 'hiden'",
        ),
        (
            "\n[checks.test_output_line]\npoints = 2\n",
            "assignment.toml:{line}: [checks.test_output_line] names no check of the assignment, so it changes nothing "
            "(did you mean 'test_output_lines'?)",
        ),
    ],
    ids=["unknown-key", "negative-points", "visibility-typo", "unknown-check"],
)
def test_bad_config(tmp_path: Path, grader_env: dict[str, str], addition: str, expected: str) -> None:
    folder = copy_assignment(tmp_path)
    config = folder / "assignment.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + addition, encoding="utf-8")
    line = len(text.splitlines()) + len(addition.rstrip("\n").splitlines())
    if addition.startswith("\n[checks.test_output_line]\n"):
        line -= 1  # the table's header
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2, done.stdout
    assert "assignment error: " + expected.format(line=line) in done.stdout


def test_a_clause_table_naming_what_is_no_check(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """clauses.toml: a clause naming a check that does not exist, or none without a reason, is an error with its
    line; a check that judges no clause is a warning."""
    folder = copy_assignment(tmp_path)
    table = folder / "clauses.toml"
    misspelt = edit(table, 'checks = ["test_hello_prints_its_greeting"]', 'checks = ["test_hello_prints_its_greting"]') - 2
    bare = edit(table, 'checks = ["test_hello_sleeps_for_delay"]', "") - 2
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2, done.stdout
    assert (
        f"assignment error: clauses.toml:{misspelt}: the clause 'hello(n, delay) prints exactly `[n] Hello!`, one line' "
        "names 'test_hello_prints_its_greting', which is no check of the assignment; checks: "
    ) in done.stdout
    assert (
        f"assignment error: clauses.toml:{bare}: the clause 'hello(n, delay) sleeps `delay` seconds (time.sleep), not a "
        "fixed time, and prints after the sleep' names no check: name the checks that judge it, or say in `unchecked` "
        "why none can"
    ) in done.stdout
    for name in ("test_hello_prints_its_greeting", "test_hello_sleeps_for_delay"):
        assert f"assignment warning: clauses.toml: {name} judges no clause of clauses.toml" in done.stdout
    edit(table, 'checks = ["test_hello_prints_its_greting"]', 'checks = ["test_hello_prints_its_greeting"]')
    reason = 'unchecked = "judged by hand, by the instructor"\n'
    edit(table, 'clause = "hello(n, delay) sleeps', reason + 'clause = "hello(n, delay) sleeps')
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 0, done.stdout
    assert "assignment warning: clauses.toml: test_hello_sleeps_for_delay judges no clause" in done.stdout
    table.write_text("[[clause]]\nclause = 'x'\nchecks = 'test_output_lines'\n", encoding="utf-8")
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 2, done.stdout
    assert "assignment error: clauses.toml:1: `checks` of the clause 'x' must be a list of check names" in done.stdout


def test_every_check_hidden_is_a_warning(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    text = (folder / "test_hello_threads.py").read_text(encoding="utf-8")
    names = [line.split("(")[0][4:] for line in text.splitlines() if line.startswith("def test_")]
    with (folder / "assignment.toml").open("a", encoding="utf-8") as config:
        for name in names:
            config.write(f'\n[checks.{name}]\nvisibility = "hidden"\n')
    done = run(grader_env, "validate", str(folder), "--no-reference")
    assert done.returncode == 0, done.stdout
    assert "assignment warning: assignment.toml: every check is hidden" in done.stdout


def test_a_reference_that_loses_points(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    buggy = CORPUS / "hello_threads" / "buggy" / "extra_output.py"
    done = run(grader_env, "validate", str(folder), str(buggy), "--check-workers", "1")
    assert done.returncode == 2, done.stdout
    line = line_of(folder / "test_hello_threads.py", "def test_output_lines(")
    assert (
        f"assignment error: test_hello_threads.py:{line}: the reference solution extra_output.py lost 2 of 2 point(s) "
        "on test_output_lines (failed): "
    ) in done.stdout


def test_grade_with_a_reference_stops_before_grading_a_broken_assignment(
    tmp_path: Path, grader_env: dict[str, str], tiny_class: Path
) -> None:
    folder = copy_assignment(tmp_path, "hello_processes")
    checks = folder / "test_hello_processes.py"
    line = call_line(checks, edit(checks, '"main_then_wait", count, delay, trace=["hello"], timeout=10,',
                                  '"main_then_wiat", count, delay, trace=["hello"], timeout=10,'))
    out = tmp_path / "out"
    done = run(
        grader_env, "grade", str(folder), str(tiny_class), "--out", str(out), "--reference",
        str(REFERENCE / "hello_processes.py"), "-j", "1",
    )
    assert done.returncode == 2, done.stderr
    assert f"assignment error: test_hello_processes.py:{line}: drivers.py has no driver named 'main_then_wiat'" in done.stderr
    assert "not grading the class" in done.stderr
    assert "Grading " not in done.stderr  # no submission was graded
    assert not (out / "grades.csv").exists()


def test_a_new_assignment_validates_with_its_reference_beside_it(tmp_path: Path, grader_env: dict[str, str]) -> None:
    assert run(grader_env, "new", "squares", "--dir", str(tmp_path)).returncode == 0
    done = run(grader_env, "validate", str(tmp_path / "squares"), "--check-workers", "1")
    assert done.returncode == 0, done.stdout
    assert "squares: valid (" in done.stdout and "the reference squares.py gets full marks" in done.stdout


BUNDLED = sorted(p.name for p in (ROOT / "assignments").iterdir() if (p / "assignment.toml").is_file())


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_assignment_is_valid_with_its_reference(name: str, grader_env: dict[str, str]) -> None:
    done = run(grader_env, "validate", name, "--check-workers", "1", timeout=900)
    assert done.returncode == 0, done.stdout
    module = tomllib.loads((ROOT / "assignments" / name / "assignment.toml").read_text())["assignment"]["module"]
    assert f"the reference {module} gets full marks" in done.stdout


def test_check_with_a_broken_config_names_the_line(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = copy_assignment(tmp_path)
    config = folder / "assignment.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text + "timout = 3\n", encoding="utf-8")
    done = run(grader_env, "check", str(folder), str(REFERENCE / "hello_threads.py"))
    assert done.returncode == 2
    line = len(text.splitlines()) + 1
    assert f"assignment error: assignment.toml:{line}: unknown key(s) in [assignment]: timout" in done.stderr
    assert "the assignment's config is broken" in done.stderr
