"""Schema and content tests of the LMS exporters, and of `grader check --prairielearn/--github/--junit`."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from lms_schemas import (
    decode_github_output,
    strict_json,
    validate_github,
    validate_gradescope,
    validate_junit,
    validate_prairielearn,
)

from grader.exporters.canvas import CANVAS_COLUMNS, CanvasColumn, CanvasExportError, canvas_column, canvas_csv, write_canvas_csv
from grader.exporters.github import encode_runner_result, to_github_classroom, write_github_output
from grader.exporters.gradescope import read_submission_metadata, to_gradescope
from grader.exporters.junit import to_junit_xml
from grader.exporters.prairielearn import prairielearn_ungradable, to_prairielearn
from grader.grading.batch import write_class_reports
from grader.grading.precheck import format_errors
from grader.model.assignment import find_assignment
from grader.model.results import CheckResult, Status, SubmissionResult

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "reference" / "hello_processes.py"
BUGGY = REPO / "tests" / "corpus" / "hello_processes" / "buggy"
SECRET = "the hidden check's secret message"


def make_result(**overrides: object) -> SubmissionResult:
    checks = [
        CheckResult("test_a", "Prints the greeting", 2, 2, Status.PASSED, output="[1] Hello!", duration=0.5),
        CheckResult(
            "test_b", "Joins every child", 3, 0, Status.FAILED,
            message="Observed: a child was never joined\nExpected: every child joined\nHint: call join()",
            output="Done!\x00", duration=1.25, description="All children are joined before Done!",
        ),
        CheckResult("test_c", "Finishes in time", 1, 0, Status.TIMED_OUT, message="Observed: still running after 15s",
                    diagnostics="Where it was stuck: queue.get()", duration=15.0),
        CheckResult("test_d", "Hidden stress", 2, 0, Status.FAILED, message=SECRET, output=SECRET,
                    visibility="hidden"),
        CheckResult("test_e", "Grader internal", 1, 0, Status.ERROR, message="The grader hit an internal error",
                    diagnostics="Traceback: boom"),
    ]
    fields: dict[str, object] = {
        "assignment": "hello_processes", "student": "Ada", "submission": "ada/hello_processes.py",
        "checks": checks, "duration": 17.5, "python": "3.11.7",
    }
    fields.update(overrides)
    return SubmissionResult(**fields)  # type: ignore[arg-type]


def failed_result() -> SubmissionResult:
    return make_result(checks=[], error="the checks could not run", error_detail="Traceback (most recent call last): X")


# -- Gradescope -------------------------------------------------------------------
def test_gradescope_document_follows_the_spec() -> None:
    result = make_result(metadata={"gradescope": {"users": [{"name": "Ada Lovelace", "id": 42}], "submission_id": 7}})
    doc = strict_json(json.dumps(to_gradescope(result)))
    assert validate_gradescope(doc) == []
    assert doc["score"] == 2 and isinstance(doc["execution_time"], float)
    # visible checks first, numbered without a gap; the hidden check worth points is
    # after_published, so Gradescope also hides the total until grades are published
    assert [t["visibility"] for t in doc["tests"]] == ["visible"] * 4 + ["after_published"]
    assert [t["extra_data"]["check"] for t in doc["tests"]] == ["test_a", "test_b", "test_c", "test_e", "test_d"]
    assert [t["status"] for t in doc["tests"]] == ["passed"] + ["failed"] * 4
    assert [t["number"] for t in doc["tests"]] == ["1", "2", "3", "4", "5"]
    assert "Ada Lovelace (id 42)" in doc["output"]
    # the student-visible summary counts only what the student can see
    assert "1 of 4 checks passed: 2/7 points." in doc["output"] and "9" not in doc["output"]
    assert doc["extra_data"]["users"] == [{"name": "Ada Lovelace", "id": 42}]
    assert "Timed out. Observed: still running after 15s" in doc["tests"][2]["output"]
    assert "Where it was stuck" in doc["tests"][2]["output"]


def test_gradescope_failure_shows_a_visible_entry_and_hides_the_traceback() -> None:
    doc = to_gradescope(failed_result())
    assert validate_gradescope(doc) == []
    visible = [t for t in doc["tests"] if t["visibility"] == "visible"]
    hidden = [t for t in doc["tests"] if t["visibility"] == "hidden"]
    assert [t["name"] for t in visible] == ["Autograder failed"]
    assert "Traceback" not in json.dumps(visible) and "Traceback" not in doc["output"]
    assert "Traceback (most recent call last): X" in hidden[0]["output"]
    assert doc["score"] == 0


def test_gradescope_submission_metadata_is_read_tolerantly(tmp_path: Path) -> None:
    path = tmp_path / "submission_metadata.json"
    path.write_text(json.dumps({
        "id": 123, "created_at": "2026-11-25T12:00:00Z", "assignment": {"title": "HW 1", "total_points": "12.0"},
        "users": [{"email": "ada@example.edu", "id": 42, "name": "Ada"}, {"email": "b@example.edu", "id": 43,
                                                                         "name": "Bob"}],
        "previous_submissions": [{"results": {"tests": [{"output": "secret"}]}}],
    }))
    info = read_submission_metadata(path)
    assert info == {"users": [{"name": "Ada", "id": 42, "email": "ada@example.edu"},
                              {"name": "Bob", "id": 43, "email": "b@example.edu"}],
                    "submission_id": 123, "assignment": "HW 1"}
    path.write_text("{not json")
    assert read_submission_metadata(path) == {}
    assert read_submission_metadata(tmp_path / "missing.json") == {}


# -- PrairieLearn -----------------------------------------------------------------
def test_prairielearn_document_follows_the_spec() -> None:
    doc = strict_json(json.dumps(to_prairielearn(make_result())))
    assert validate_prairielearn(doc, every_check_listed=False) == []
    assert doc["gradable"] is True and doc["score"] == pytest.approx(2 / 9)
    assert [t["points"] for t in doc["tests"]] == [2, 0, 0, 0]
    assert [t["max_points"] for t in doc["tests"]] == [2, 3, 1, 1]
    assert doc["tests"][1]["description"] == "All children are joined before Done!"
    assert "Observed: a child was never joined" in doc["tests"][1]["message"]
    assert SECRET not in json.dumps(doc), "a hidden check's details must not reach PrairieLearn"
    assert "Hidden stress" not in json.dumps(doc)
    assert doc["message"] == "1 of 4 checks passed: 2/7 points."


def test_prairielearn_ungradable_and_grader_failure() -> None:
    doc = prairielearn_ungradable(["hello_processes.py has a syntax error at line 6"])
    assert validate_prairielearn(doc) == [] and doc["gradable"] is False
    failed = to_prairielearn(failed_result())
    assert validate_prairielearn(failed) == [] and failed["gradable"] is False
    assert "Traceback" not in json.dumps(failed)


def test_format_errors_find_missing_files_and_syntax_errors(tmp_path: Path) -> None:
    assignment = find_assignment("hello_processes")
    assert format_errors(assignment, REFERENCE) == []
    assert "no submission found: the submission is empty" in format_errors(assignment, tmp_path)[0]
    (tmp_path / "solution.py").write_text("x = 1\n")
    assert format_errors(assignment, tmp_path) == []  # the only .py file is the module
    (tmp_path / "notes.py").write_text("x = 1\n")
    assert "found 2 Python files named otherwise (notes.py and solution.py)" in format_errors(assignment, tmp_path)[0]
    assert "(files seen: notes.py, solution.py)" in format_errors(assignment, tmp_path)[0]
    assert "no submission found: the submission nothing does not exist" in format_errors(assignment, tmp_path / "nothing")[0]
    problems = format_errors(assignment, BUGGY / "syntax_error.py")
    assert len(problems) == 1 and "syntax error at line 6" in problems[0] and "def hello(n, delay)" in problems[0]
    assert "run `python hello_processes.py` yourself" in problems[0]


# -- GitHub Classroom -------------------------------------------------------------
def test_github_runner_result_follows_the_reporter(tmp_path: Path) -> None:
    result = make_result()
    doc = to_github_classroom(result)
    assert validate_github(doc) == []
    assert doc["status"] == "fail" and doc["max_score"] == 7  # the hidden check (2 points) is left out
    assert [t["status"] for t in doc["tests"]] == ["pass", "fail", "fail", "error"]
    assert SECRET not in json.dumps(doc) and "Hidden stress" not in json.dumps(doc)
    output = tmp_path / "github_output"
    output.write_text("earlier=1\n")
    value = write_github_output(result, str(output))
    lines = output.read_text().splitlines()
    assert lines[0] == "earlier=1" and lines[1] == f"result={value}"
    # What the reporter does: base64-decode <RUNNER>_RESULTS, sum the tests' scores out of max_score.
    decoded = decode_github_output(output.read_text())
    assert decoded == strict_json(json.dumps(doc))
    assert sum(t["score"] for t in decoded["tests"]) == result.score
    full = make_result(checks=[make_result().checks[0]])
    assert to_github_classroom(full)["status"] == "pass"
    failed = to_github_classroom(failed_result())
    assert validate_github(failed) == [] and failed["status"] == "error"
    assert "\n" not in encode_runner_result(doc)


# -- JUnit ------------------------------------------------------------------------
def test_junit_xml_has_a_testcase_per_check_with_points() -> None:
    text = to_junit_xml(make_result())
    assert validate_junit(text) == []
    suite = ET.fromstring(text.encode()).find("testsuite")
    assert suite is not None
    # the hidden check is left out: no test case, no count, no points
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "1")
    suite_props = {p.get("name"): p.get("value") for p in suite.find("properties")}  # type: ignore[union-attr]
    assert suite_props["score"] == "2" and suite_props["max_score"] == "7"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [c.name for c in make_result().checks if c.visibility == "visible"]
    # per-check points are suite properties named after the test case's classname (junit-10.xsd has no
    # <properties> inside a <testcase>)
    assert all(c.find("properties") is None for c in cases)
    assert suite_props[f"{cases[1].get('classname')}.points"] == "0"
    assert suite_props[f"{cases[1].get('classname')}.max_points"] == "3"
    assert sum(float(v) for k, v in suite_props.items() if k.endswith(".points")) == 2
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "Observed: a child was never joined"
    assert "Hint: call join()" in (failure.text or "")
    assert cases[2].find("failure").get("type") == "timed_out"  # type: ignore[union-attr]
    assert cases[3].find("error") is not None and cases[0].find("failure") is None
    assert "\\x00" in (cases[1].find("system-out").text or "")  # type: ignore[union-attr]
    assert SECRET not in text and "Hidden stress" not in text


def test_junit_schema_refuses_testcase_properties() -> None:
    """The validator holds the schema: the xunit1 form (properties in a test case) is not junit-10.xsd."""
    text = to_junit_xml(make_result())
    case_with_props = text.replace("</testcase>", '<properties><property name="points" value="1" /></properties></testcase>', 1)
    assert any("properties" in problem for problem in validate_junit(case_with_props))
    assert validate_junit(text.replace('errors="1"', 'errors="0"')) != []


def test_junit_xml_of_a_grader_failure() -> None:
    text = to_junit_xml(failed_result())
    assert validate_junit(text) == []
    case = ET.fromstring(text.encode()).find("testsuite/testcase")
    assert case is not None and case.get("name") == "Autograder failed" and case.find("error") is not None


# -- Canvas -----------------------------------------------------------------------
def canvas_results() -> list[SubmissionResult]:
    one = make_result(student="Ada", metadata={"canvas_id": 1001, "sis_user_id": "S1", "sis_login_id": "ada",
                                                "section": "A", "student_name": "Lovelace, Ada"})
    two = make_result(student="Bob", checks=make_result().checks[:1], metadata={"sis_login_id": "bob"})
    three = failed_result()
    three.metadata = {"canvas_id": "1003"}
    return [one, two, three]


def test_canvas_csv_has_the_import_columns(tmp_path: Path) -> None:
    text = canvas_csv(canvas_results(), "Hello processes", assignment_id=555, points_possible=12)
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [*CANVAS_COLUMNS, "Hello processes (555)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "12"]
    assert rows[2] == ["Lovelace, Ada", "1001", "S1", "ada", "A", "2"]
    assert rows[3] == ["Bob", "", "", "bob", "", "2"]
    assert rows[4] == ["Ada", "1003", "", "", "", ""], "an ungraded submission leaves the Canvas grade alone"
    path = tmp_path / "canvas.csv"
    write_canvas_csv(canvas_results(), path, "Hello processes")
    assert path.read_bytes().startswith(b"\xef\xbb\xbfStudent,ID,")
    assert "Points Possible" not in path.read_text(encoding="utf-8-sig")


def test_canvas_column_matches_an_existing_assignment_by_id() -> None:
    assert canvas_column("Lab 2", 12345) == canvas_column(" Lab 2 ", " 12345") == "Lab 2 (12345)"
    assert canvas_column("Lab 2") == "Lab 2"
    for bad in ("abc", "12 345", ""):
        with pytest.raises(CanvasExportError, match="is a number"):
            canvas_column("Lab 2", bad)
    with pytest.raises(CanvasExportError, match="needs a title"):
        canvas_column("  ", 1)


def test_class_reports_write_the_canvas_column_asked_for(tmp_path: Path) -> None:
    assignment = find_assignment("hello_processes")
    results = canvas_results()
    results[1].metadata["canvas_id"] = "1002"  # a Canvas export: every student has a Canvas user id
    write_class_reports(tmp_path / "a", assignment, results, canvas=CanvasColumn("Lab 2", "12345"))
    rows = list(csv.reader(io.StringIO((tmp_path / "a" / "canvas.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0] == [*CANVAS_COLUMNS, "Lab 2 (12345)"]
    write_class_reports(tmp_path / "b", assignment, results)
    rows = list(csv.reader(io.StringIO((tmp_path / "b" / "canvas.csv").read_text(encoding="utf-8-sig"))))
    assert rows[0] == [*CANVAS_COLUMNS, assignment.title]
    results[1].metadata = {"sis_login_id": "bob"}  # not from a Canvas export: no canvas.csv
    write_class_reports(tmp_path / "c", assignment, results)
    assert not (tmp_path / "c" / "canvas.csv").exists()


def test_canvas_csv_refuses_rows_canvas_cannot_match() -> None:
    with pytest.raises(CanvasExportError, match=r"1 result\(s\) have no canvas_id.*: Ada"):
        canvas_csv([make_result()], "HW")
    twice = canvas_results()[:1] * 2
    with pytest.raises(CanvasExportError, match="two results for the same student"):
        canvas_csv(twice, "HW")


# -- the CLI ----------------------------------------------------------------------
def grader(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, its temporary files under tmp_path."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_OUTPUT", "PYTEST_ADDOPTS")}
    full_env["TMPDIR"] = str(tmp_path)
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, env=full_env,
                          cwd=tmp_path, timeout=600)


def test_cli_check_writes_every_lms_format(tmp_path: Path) -> None:
    github_output = tmp_path / "github_output"
    github_output.touch()
    pl, junit = tmp_path / "pl" / "results.json", tmp_path / "junit.xml"
    run = grader(tmp_path, "check", "hello_processes", str(BUGGY / "threads.py"), "--prairielearn", str(pl), "--junit",
                 str(junit), "--github", env={"GITHUB_OUTPUT": str(github_output)})
    assert run.returncode == 1, run.stderr
    doc = strict_json(pl.read_text())
    assert validate_prairielearn(doc) == [] and doc["gradable"] is True and 0 < doc["score"] < 1
    failed = {t["name"] for t in doc["tests"] if t["points"] < t["max_points"]}
    assert any("own child process" in name for name in failed), failed
    assert validate_junit(junit.read_text()) == []
    gh = decode_github_output(github_output.read_text())
    assert validate_github(gh) == [] and gh["status"] == "fail"
    assert sum(t["score"] for t in gh["tests"]) == pytest.approx(doc["score"] * gh["max_score"])


def test_cli_prairielearn_ungradable_submissions(tmp_path: Path) -> None:
    pl = tmp_path / "results.json"
    run = grader(tmp_path, "check", "hello_processes", str(BUGGY / "syntax_error.py"), "--prairielearn", str(pl))
    assert run.returncode == 1, run.stderr
    doc = strict_json(pl.read_text())
    assert validate_prairielearn(doc) == [] and doc["gradable"] is False
    assert "syntax error at line 6" in doc["format_errors"][0]
    empty = tmp_path / "student"
    empty.mkdir()
    run = grader(tmp_path, "check", "hello_processes", str(empty), "--prairielearn", str(pl))
    assert run.returncode == 1
    assert "no submission found: the submission is empty" in strict_json(pl.read_text())["format_errors"][0]


def test_cli_github_needs_github_output(tmp_path: Path) -> None:
    run = grader(tmp_path, "check", "hello_processes", str(REFERENCE), "--github")
    assert run.returncode == 2
    assert "$GITHUB_OUTPUT" in run.stderr and "Traceback" not in run.stderr
