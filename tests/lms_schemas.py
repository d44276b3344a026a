"""Validators for the LMS result formats, written from each platform's documented fields.

- Gradescope: https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format")
- PrairieLearn: https://prairielearn.readthedocs.io/en/latest/externalGrading/ ("Grading results")
- GitHub Classroom: the runner result read by autograding-grading-reporter (src/main.js,
  notify-classroom.js, console-results.js)
- JUnit XML: the Jenkins xunit plugin's schema ``junit-10.xsd`` (tests/schemas/), validated with lxml,
  plus the counts and per-check points the schema cannot express
"""

from __future__ import annotations

import base64
import functools
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from lxml import etree

GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format",
                  "visibility", "stdout_visibility", "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                   "tags", "visibility", "extra_data"}
VISIBILITIES = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def strict_json(text: str) -> Any:
    """Parse JSON, refusing NaN and Infinity (which Gradescope's parser would reject)."""

    def refuse(name: str) -> None:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def validate_gradescope(doc: Any) -> list[str]:
    """Problems with a Gradescope results.json document (empty when valid)."""
    problems = []
    if not isinstance(doc, dict):
        return ["results.json is not a JSON object"]
    unknown = set(doc) - GRADESCOPE_TOP
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    tests = doc.get("tests")
    if "score" not in doc and not (isinstance(tests, list) and all("score" in t for t in tests)):
        problems.append("no top-level score and not every test has one")
    if "score" in doc and not _number(doc["score"]):
        problems.append(f"score is not a number: {doc['score']!r}")
    if "execution_time" in doc and not _number(doc["execution_time"]):
        problems.append(f"execution_time is not a number: {doc['execution_time']!r}")
    for key in ("output",):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{key} is not a string")
    for key in ("visibility", "stdout_visibility"):
        if key in doc and doc[key] not in VISIBILITIES:
            problems.append(f"{key} {doc[key]!r} is not one of {sorted(VISIBILITIES)}")
    if "output_format" in doc and doc["output_format"] not in FORMATS:
        problems.append(f"output_format {doc['output_format']!r}")
    if "extra_data" in doc and not isinstance(doc["extra_data"], dict):
        problems.append("extra_data is not an object")
    if tests is None:
        return problems
    if not isinstance(tests, list):
        return [*problems, "tests is not a list"]
    for i, test in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(test, dict):
            problems.append(f"{where} is not an object")
            continue
        unknown = set(test) - GRADESCOPE_TEST
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("score", "max_score"):
            if key in test and not _number(test[key]):
                problems.append(f"{where}.{key} is not a number")
        if "status" in test and test["status"] not in ("passed", "failed"):
            problems.append(f"{where}.status {test['status']!r}")
        if "visibility" in test and test["visibility"] not in VISIBILITIES:
            problems.append(f"{where}.visibility {test['visibility']!r}")
        if "output_format" in test and test["output_format"] not in FORMATS:
            problems.append(f"{where}.output_format {test['output_format']!r}")
        for key in ("name", "number", "output"):
            if key in test and not isinstance(test[key], str):
                problems.append(f"{where}.{key} is not a string")
        if _number(test.get("score")) and _number(test.get("max_score")) and test["score"] > test["max_score"]:
            problems.append(f"{where}: score above max_score")
    if _number(doc.get("score")) and all(_number(t.get("score")) for t in tests if isinstance(t, dict)):
        total = sum(t["score"] for t in tests if isinstance(t, dict))
        if abs(total - doc["score"]) > 1e-6:
            problems.append(f"score {doc['score']} is not the sum of the tests' scores {total}")
    return problems


PL_TOP = {"gradable", "score", "message", "output", "images", "tests", "format_errors", "feedback", "partial_scores"}
PL_TEST = {"name", "description", "points", "max_points", "message", "output", "images"}


def validate_prairielearn(doc: Any, *, every_check_listed: bool = True) -> list[str]:
    """Problems with a PrairieLearn external grader results.json document."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = []
    unknown = set(doc) - PL_TOP
    if unknown:
        problems.append(f"unknown top-level keys {sorted(unknown)}")
    if not isinstance(doc.get("gradable"), bool):
        problems.append("gradable is not a boolean")
    if doc.get("gradable") is False:
        errors = doc.get("format_errors")
        if not (isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors)):
            problems.append("an ungradable result needs format_errors, a non-empty list of strings")
    if doc.get("gradable") is True and not (_number(doc.get("score")) and 0 <= doc["score"] <= 1):
        problems.append(f"score must be a number in [0, 1], got {doc.get('score')!r}")
    for key in ("message", "output"):
        if key in doc and not isinstance(doc[key], str):
            problems.append(f"{key} is not a string")
    for i, test in enumerate(doc.get("tests", [])):
        where = f"tests[{i}]"
        if set(test) - PL_TEST:
            problems.append(f"{where}: unknown keys {sorted(set(test) - PL_TEST)}")
        if not isinstance(test.get("name"), str):
            problems.append(f"{where}.name is not a string")
        for key in ("points", "max_points"):
            if not _number(test.get(key)):
                problems.append(f"{where}.{key} is not a number")
        for key in ("description", "message", "output"):
            if key in test and not isinstance(test[key], str):
                problems.append(f"{where}.{key} is not a string")
        if _number(test.get("points")) and _number(test.get("max_points")) and test["points"] > test["max_points"]:
            problems.append(f"{where}: points above max_points")
    tests = doc.get("tests", [])
    # With a hidden check left out of the list, the score (the grade) counts more than the tests show.
    if doc.get("gradable") and tests and every_check_listed:
        total = sum(t["points"] for t in tests)
        most = sum(t["max_points"] for t in tests)
        if most and abs(total / most - doc["score"]) > 1e-4:
            problems.append(f"score {doc['score']} is not points/max_points {total}/{most}")
    return problems


def decode_github_output(text: str, name: str = "result") -> dict[str, Any]:
    """The runner result from a $GITHUB_OUTPUT file, decoded as the grading reporter does."""
    values = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{name}=")]
    assert len(values) == 1, f"expected one {name}= line in $GITHUB_OUTPUT, got {text!r}"
    return strict_json(base64.b64decode(values[0], validate=True).decode("utf-8"))


def validate_github(doc: Any) -> list[str]:
    """Problems with a GitHub Classroom autograding runner result."""
    if not isinstance(doc, dict):
        return ["not a JSON object"]
    problems = []
    if not _number(doc.get("version")):
        problems.append("version is not a number")
    if doc.get("status") not in ("pass", "fail", "error"):
        problems.append(f"status {doc.get('status')!r}")
    if not _number(doc.get("max_score")):
        problems.append("max_score is not a number")
    tests = doc.get("tests")
    if not isinstance(tests, list) or not tests:
        return [*problems, "tests is not a non-empty list (the reporter divides by its length)"]
    for i, test in enumerate(tests):
        if not isinstance(test.get("name"), str):
            problems.append(f"tests[{i}].name is not a string")
        if test.get("status") not in ("pass", "fail", "error"):
            problems.append(f"tests[{i}].status {test.get('status')!r}")
        if not _number(test.get("score")):
            problems.append(f"tests[{i}].score is not a number")
        if "message" in test and not isinstance(test["message"], str):
            problems.append(f"tests[{i}].message is not a string")
    if doc.get("status") == "pass" and any(t.get("status") != "pass" for t in tests):
        problems.append("status pass while a test did not pass")
    if _number(doc.get("max_score")) and sum(t.get("score", 0) for t in tests) > doc["max_score"] + 1e-9:
        problems.append("the tests' scores add up to more than max_score")
    return problems


JUNIT_XSD = Path(__file__).resolve().parent / "schemas" / "junit-10.xsd"


@functools.cache
def junit_schema() -> etree.XMLSchema:
    """The Jenkins xunit plugin's ``junit-10.xsd`` (vendored from pytest's sdist: tests/schemas/README.md)."""
    return etree.XMLSchema(etree.parse(str(JUNIT_XSD)))


def validate_junit(text: str) -> list[str]:
    """Problems with a JUnit XML document: ``junit-10.xsd``, then what a schema cannot say (counts, points)."""
    document = etree.fromstring(text.encode("utf-8"))
    schema = junit_schema()
    if not schema.validate(document):
        return [f"line {e.line}: {e.message}" for e in schema.error_log]
    root = ET.fromstring(text.encode("utf-8"))
    problems = []
    if root.tag != "testsuites":
        problems.append(f"root element is <{root.tag}>, not <testsuites>")
    suites = root.findall("testsuite")
    if not suites:
        problems.append("no <testsuite>")
    for suite in suites:
        cases = suite.findall("testcase")
        if int(suite.get("tests", -1)) != len(cases):
            problems.append("testsuite tests= is not the number of testcases")
        failures = sum(1 for c in cases if c.find("failure") is not None)
        errors = sum(1 for c in cases if c.find("error") is not None)
        if int(suite.get("failures", 0)) != failures or int(suite.get("errors", 0)) != errors:
            problems.append("testsuite failures/errors counts do not match its testcases")
        props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
        for case in cases:
            if "classname" not in case.attrib:
                problems.append("testcase without classname")
            float(case.get("time", "0"))
            if case.get("name") == "Autograder failed":
                continue
            for key in ("points", "max_points"):
                value = props.get(f"{case.get('classname')}.{key}")
                if value is None or not math.isfinite(float(value)):
                    problems.append(f"no suite property {case.get('classname')}.{key}")
    return problems
