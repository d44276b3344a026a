"""`grader mutants` end to end, in a subprocess, on the tiny greet assignment of tests/assignments.

Its checks kill some mutants of tests/assignments/reference/greet.py and, on purpose, miss others:
nothing checks the default of `times`, and sorting or reversing a list of equal greetings changes
nothing (equivalent mutants). A check that fails on the second grading of a submission only stands
for a check that catches a bug by luck.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, grader_command

from grader.grading.batch import StudentSubmission, check_worker_plan, grade_all
from grader.grading.grade import StopEarly
from grader.model.assignment import Assignment

TINY = Path(__file__).resolve().parent / "assignments" / "mutants_greet"
REFERENCE = TINY.parent / "reference" / "greet.py"
KILLED = ["results_deduplicated@greet:8", "constant_for_parameter@greet:6", "range_off_by_one@greet:6", "output_text@shout:12"]
EQUIVALENT = ["results_sorted@greet:8", "results_reversed@greet:8"]
DEFAULT = "default_changed@greet:4"


def run(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT)


def rows(stdout: str) -> dict[str, tuple[str, str, str]]:
    """The table's lines: mutant name -> (status, runs, killers)."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split(None, 3)
        if line.startswith("  ") and len(parts) >= 3 and "@" in parts[2]:
            found[parts[2]] = (parts[0], parts[1], parts[3] if len(parts) > 3 else "")
    return found


@pytest.mark.parametrize("full_runs", [False, True], ids=["later-runs-stop-early", "full-runs"])
def test_survivors_and_a_flaky_check_exit_1(tmp_path: Path, grader_env: dict[str, str], full_runs: bool) -> None:
    """The verdicts are the same whether the second runs stop at the first check that loses points or grade all."""
    state = tmp_path / "state"
    state.mkdir()
    grader_env["GREET_FLAKY_STATE"] = str(state)
    html, report = tmp_path / "mutants.html", tmp_path / "mutants.json"
    args = ["mutants", str(TINY), "--runs", "2", "-j", "2", "--html", str(html), "--json", str(report)]
    done = run(args + (["--full-runs"] if full_runs else []), grader_env)
    assert done.returncode == 1, done.stdout + done.stderr
    table = rows(done.stdout)
    assert sorted(table) == sorted([*KILLED, *EQUIVALENT, DEFAULT]), done.stdout
    for name in KILLED:
        assert table[name][:2] == ("KILLED", "2/2"), done.stdout
    assert table["output_text@shout:12"][2] == "test_shouts"
    assert table["range_off_by_one@greet:6"][2] == "test_greets_times"
    for name in EQUIVALENT:
        assert table[name] == ("SURVIVED", "0/2", "no check lost points"), done.stdout
    assert table[DEFAULT] == ("FLAKY", "1/2", "test_default_sometimes (1/2)"), done.stdout
    assert "-    return lines\n    +    return _sorted_when_comparable(list(lines))" in done.stdout  # the survivors' diffs
    assert "Score: 4/7 non-equivalent mutants killed on every run of 2 (2 survived, 1 killed only sometimes" in done.stdout
    data = json.loads(report.read_text())
    assert data["counts"] == {"killed": 4, "flaky": 1, "survived": 2, "error": 0, "equivalent": 0}
    assert "FLAKY" in html.read_text() and "test_default_sometimes" in html.read_text()
    assert data["checks"] == 3 and data["full_runs"] is full_runs
    graded = {m["name"]: m["checks_graded"] for m in data["mutants"]}
    for name in KILLED:  # the second run grades a check that killed it on the first one, and stops there
        assert graded[name] == ([3, 3] if full_runs else [3, 1]), data
    for name in [*EQUIVALENT, DEFAULT]:  # no check lost points on the first run: nothing to stop at
        assert graded[name] == [3, 3], data
    stopped = "(runs after the first stop at the first check that loses points)"
    assert (stopped in done.stdout) is not full_runs, done.stdout


def test_a_later_run_grades_the_first_run_s_killers_first(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """test_shouts comes after test_greets_times in the file; on the second run of a mutant only it kills, it runs alone."""
    report = tmp_path / "mutants.json"
    done = run(["mutants", str(TINY), "--runs", "3", "-j", "2", "--json", str(report)], grader_env)
    assert done.returncode == 1, done.stdout + done.stderr
    shout = next(m for m in json.loads(report.read_text())["mutants"] if m["name"] == "output_text@shout:12")
    assert shout["status"] == "killed" and shout["checks_graded"] == [3, 1, 1], shout
    assert shout["graded"] == {"test_greets_times": 1, "test_shouts": 3, "test_default_sometimes": 1}, shout


@pytest.fixture
def strengthened(tmp_path: Path) -> Path:
    """The greet assignment with a check of the default, its equivalent mutants marked, and an operator of its own."""
    course = tmp_path / "course"
    shutil.copytree(TINY, course / "greet")
    shutil.copytree(TINY.parent / "reference", course / "reference")
    checks = course / "greet" / "test_greet.py"
    checks.write_text(
        checks.read_text()
        + '''

def test_default_times(submission: Submission) -> None:
    """greet("ann") returns two greetings."""
    run = submission.call("greet", "ann", timeout=8)
    expect(run.value == ["Hello, ann!"] * 2, observed=repr(run.value), expected="two greetings", hint="times=2")
'''
    )
    with (course / "greet" / "assignment.toml").open("a") as config:
        config.write(
            "\n[[mutants.equivalent]]\nname = \"results_sorted@greet:8\"\n"
            "reason = \"the list holds one greeting repeated: <sorted> is the same list\"\n"
            "\n[[mutants.equivalent]]\nname = \"results_reversed@greet:8\"\n"
            "reason = \"the list holds one greeting repeated: reversed is the same list\"\n"
        )
    (course / "greet" / "mutants.py").write_text(
        "import ast\nfrom grader.mutation.sites import Site\n\n\n"
        "def mutate_no_comma(tree):\n"
        "    for node in ast.walk(tree):\n"
        "        if isinstance(node, ast.Constant) and node.value == 'Hello, ':\n"
        "            def change(node=node):\n"
        "                node.value = 'Hello '\n"
        "            yield Site(node, change, 'the comma is dropped')\n"
    )
    return course / "greet"


def test_all_killed_exit_0_with_equivalents_and_an_instructors_operator(
    strengthened: Path, tmp_path: Path, grader_env: dict[str, str]
) -> None:
    html = tmp_path / "report.html"
    done = run(["mutants", str(strengthened), "--runs", "1", "-j", "2", "--html", str(html)], grader_env)
    assert done.returncode == 0, done.stdout + done.stderr
    table = rows(done.stdout)
    assert table["no_comma@greet:7"][:2] == ("KILLED", "1/1"), done.stdout
    assert table[DEFAULT] == ("KILLED", "1/1", "test_default_times"), done.stdout
    assert table["results_sorted@greet:8"] == (
        "EQUIVALENT", "-", "the list holds one greeting repeated: <sorted> is the same list"
    )
    assert "Score: 6/6 non-equivalent mutants killed on every run of 1 (0 survived" in done.stdout
    assert str(strengthened.parent / "reference" / "greet.py") in done.stdout  # found beside the folder
    page = html.read_text()
    assert "&lt;sorted&gt; is the same list" in page and "<sorted>" not in page


def test_a_submission_that_stops_early_stops_at_the_tail_of_a_batch(tmp_path: Path) -> None:
    """The last submissions of a batch get xdist check workers; one that stops early is graded one check at a time.

    Side by side, the checks already handed to the workers would all run to their end."""
    broken = tmp_path / "greet.py"
    broken.write_text(REFERENCE.read_text().replace("range(times)", "range(times - 1)").replace("!\")", "\")"))
    assert check_worker_plan(1)[1] > 1  # the tail of a batch of one runs its checks side by side
    assignment = Assignment.load(TINY)
    early = StudentSubmission("early", broken, "early", stop_early=StopEarly(("test_shouts",)))
    full, stopped = grade_all(assignment, [StudentSubmission("full", broken, "full"), early], jobs=1)
    assert sorted((c.id, c.passed) for c in full.checks) == [
        ("test_default_sometimes", True), ("test_greets_times", False), ("test_shouts", False)
    ], full.to_dict()
    assert [(c.id, c.passed) for c in stopped.checks] == [("test_shouts", False)], stopped.to_dict()
    assert any("first check that lost points only (1 graded): not a full grading" in note for note in stopped.notes)
    assert not any("not a full grading" in note for note in full.notes)


def test_the_reference_losing_points_exits_2(tmp_path: Path, grader_env: dict[str, str]) -> None:
    broken = tmp_path / "greet.py"
    broken.write_text(REFERENCE.read_text().replace('print(f"{name.upper()}!")', 'print(name)'))
    done = run(["mutants", str(TINY), "--reference", str(broken)], grader_env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"grader: error: the reference {broken} loses points (" in done.stderr
    assert "failed: test_shouts" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ('[[mutants.equivalent]]\nname = "results_sortd@greet:8"\nreason = "x"\n',
         "names results_sortd@greet:8, which is not a mutant of the reference; did you mean results_sorted@greet:8?"),
        ('[[mutants.equivalent]]\nname = "results_sorted@greet:8"\n', "must have exactly the keys name and reason"),
        ('[mutants]\noperators = "missing.py"\n', "[mutants] operators file 'missing.py' does not exist"),
        ('[mutants]\nspeed = 1\n', "unknown key 'speed' in [mutants]"),
    ],
)
def test_a_malformed_mutants_table_exits_2(tmp_path: Path, grader_env: dict[str, str], config: str, message: str) -> None:
    folder = tmp_path / "greet"
    shutil.copytree(TINY, folder)
    with (folder / "assignment.toml").open("a") as handle:
        handle.write("\n" + config)
    done = run(["mutants", str(folder), "--reference", str(REFERENCE)], grader_env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mutants", "no_such_assignment"], "unknown assignment 'no_such_assignment'"),
        (["mutants", str(TINY), "--reference", "nowhere.py"], "reference solution not found: nowhere.py"),
        (["mutants", str(TINY), "--runs", "0"], "--runs must be at least 1, got 0"),
    ],
)
def test_user_mistakes_are_one_line(args: list[str], message: str, grader_env: dict[str, str]) -> None:
    done = run(args, grader_env, timeout=120)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_help_explains_the_verdicts_and_the_exit_status(grader_env: dict[str, str]) -> None:
    done = run(["mutants", "--help"], grader_env, timeout=120)
    text = " ".join(done.stdout.split())
    assert done.returncode == 0
    for phrase in (
        "killed on every run", "killed only sometimes", "survived", "equivalent", "--runs N", "Exit status: 0", "--full-runs",
        "stop at the first check that loses points",
    ):
        assert phrase in text


@pytest.mark.slow
@pytest.mark.extended
def test_a_bundled_assignment_s_mutants(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """duplex_pipe's 11 mutants, once each: the verdicts agree with each other and with the exit status.

    On two CPUs: 50 s on a quiet machine (load average 4), 5 minutes under a load average of 30."""
    report = tmp_path / "duplex_pipe.json"
    done = run(["mutants", "duplex_pipe", "--runs", "1", "-j", "2", "--json", str(report)], grader_env, timeout=900)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    data = json.loads(report.read_text())
    assert data["judged"] >= 10
    for mutant in data["mutants"]:
        killed = mutant["killed_runs"] == 1
        assert mutant["status"] == ("killed" if killed else "survived"), mutant
        assert bool(mutant["killers"]) == killed, mutant
    assert done.returncode == (0 if data["counts"]["survived"] == 0 else 1)
    assert os.path.basename(data["reference"]) == "duplex_pipe.py"


def test_validate_knows_the_mutants_table(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """A sound [mutants] table is no 'unknown table'; a malformed one is an assignment error with its line."""
    folder = tmp_path / "greet"
    shutil.copytree(TINY, folder)
    config = folder / "assignment.toml"
    sound = '\n[[mutants.equivalent]]\nname = "results_sorted@greet:8"\nreason = "equal items"\n'
    config.write_text(config.read_text() + sound)
    done = run(["validate", str(folder), "--no-reference"], grader_env, timeout=120)
    assert done.returncode == 0 and "unknown table" not in done.stdout, done.stdout
    config.write_text(config.read_text() + '\n[mutants]\noperator = "ops.py"\n')
    line = len(config.read_text().splitlines())
    done = run(["validate", str(folder), "--no-reference"], grader_env, timeout=120)
    assert done.returncode == 2, done.stdout
    assert f"assignment error: assignment.toml:{line}: unknown key 'operator' in [mutants]" in done.stdout


def test_the_accuracy_page_says_how_it_was_made() -> None:
    """docs/accuracy.md is written by benchmarks/accuracy.py: it names the command and the repeats, and each row an assignment."""
    page = (ROOT / "docs" / "accuracy.md").read_text()
    assert "These figures were produced by `python benchmarks/accuracy.py" in page
    assert "repeat" in page and "load" in page
    bundled = {p.parent.name for p in (ROOT / "assignments").glob("*/assignment.toml")}
    rows = [line.split(" | ")[0][2:] for line in page.splitlines() if line.startswith("| ") and " | " in line]
    measured = [name for name in rows if name not in ("assignment", "---")]
    assert len(measured) >= 7 and set(measured) <= bundled, measured


def test_no_reference_beside_the_folder(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = tmp_path / "greet"
    shutil.copytree(TINY, folder)
    done = run(["mutants", str(folder)], grader_env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "no reference solution found for greet (looked for reference/greet.py beside the folder); " \
        "give one with --reference FILE" in done.stderr
