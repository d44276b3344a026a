"""JUnit XML exporter: one ``<testcase>`` per check, for CodeGrade and any CI.

Followed: the de-facto JUnit XML conventions as written down in the Ant/Jenkins
schemas (``junit-10.xsd``, the Windy Road ``JUnit.xsd``): a ``<testsuites>``
root holding one ``<testsuite name tests failures errors skipped time
timestamp>`` with ``<properties>``, then a ``<testcase classname name time>``
per check. A check that lost points holds a ``<failure message type>``
(``type`` is ``failed`` or ``timed_out``) whose text is the full feedback; a
grader error in a check is an ``<error>``. Points are ``<property>`` elements
of the suite, the one place the schema allows them (``junit-10.xsd`` has no
``<properties>`` in a ``<testcase>``): ``score`` and ``max_score``, then per
check ``CLASSNAME.points`` and ``CLASSNAME.max_points``, named after the test
case's ``classname``. Readers that do not know them, CodeGrade among them,
ignore them. CodeGrade's Unit Test step reads the file named in
``$CG_JUNIT_XML_LOCATION`` and scores the fraction of passed test cases.
``tests/test_lms_exporters.py`` validates the output against ``junit-10.xsd``.

A check that is not ``visible`` is left out (no test case, no count, no points), as for the other LMS exporters.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

from grader.exporters._common import check_message, check_output, shown_checks
from grader.exporters.files import write_atomic
from grader.model.results import Status, SubmissionResult

__all__ = ["to_junit_xml", "write_junit"]

# Characters XML 1.0 cannot carry at all; captured output is already escaped by
# the sandbox, but messages may quote anything.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _property(parent: ET.Element, name: str, value: object) -> None:
    ET.SubElement(parent, "property", name=name, value=_clean(str(value)))


def _number(value: float) -> str:
    return f"{value:g}"


def to_junit_xml(result: SubmissionResult, *, timestamp: datetime | None = None) -> str:
    """The JUnit XML document for ``result`` (a ``str`` starting with the XML declaration)."""
    when = (timestamp or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S")
    suite_name = result.assignment or "submission"
    checks = shown_checks(result)  # JUnit readers show every test case: hidden checks stay out
    failures = sum(1 for c in checks if c.status in (Status.FAILED, Status.TIMED_OUT)) + (result.no_submission is not None)
    errors = sum(1 for c in checks if c.status is Status.ERROR) + (1 if result.error else 0)
    tests = len(checks) + (1 if result.error else 0) + (result.no_submission is not None)
    time_text = f"{result.duration:.3f}"
    root = ET.Element(
        "testsuites", name="concurrency-grader", tests=str(tests), failures=str(failures), errors=str(errors),
        time=time_text,
    )
    suite = ET.SubElement(
        root, "testsuite", name=_clean(suite_name), tests=str(tests), failures=str(failures), errors=str(errors),
        skipped="0", time=time_text, timestamp=when,
    )
    props = ET.SubElement(suite, "properties")
    _property(props, "score", _number(sum(c.points for c in checks)))
    _property(props, "max_score", _number(sum(c.max_points for c in checks)))
    if result.student:
        _property(props, "student", result.student)
    if result.python:
        _property(props, "python", result.python)
    for check in checks:
        classname = _clean(f"{suite_name}.{check.id}")
        _property(props, f"{classname}.points", _number(check.points))
        _property(props, f"{classname}.max_points", _number(check.max_points))
    if result.error:
        case = ET.SubElement(suite, "testcase", classname=_clean(suite_name), name="Autograder failed", time="0")
        error = ET.SubElement(case, "error", message=_clean(result.error), type="grader_error")
        error.text = _clean(
            f"The autograder could not grade this submission: {result.error}. "
            "This is not a verdict on your code; tell your instructor."
        )
    if result.no_submission is not None:
        case = ET.SubElement(suite, "testcase", classname=_clean(suite_name), name="No submission found", time="0")
        failure = ET.SubElement(case, "failure", message=_clean(result.no_submission), type="no_submission")
        failure.text = _clean(f"No submission found: {result.no_submission}. Files seen: {', '.join(result.seen) or 'none'}.")
    for check in checks:
        case = ET.SubElement(
            suite, "testcase", classname=_clean(f"{suite_name}.{check.id}"), name=_clean(check.name),
            time=f"{check.duration:.3f}",
        )
        if not check.passed:
            text = check_message(check, result.checks)
            first = (check.message.splitlines() or [""])[0]
            tag = "error" if check.status is Status.ERROR else "failure"
            element = ET.SubElement(case, tag, message=_clean(first), type=check.status.value)
            element.text = _clean(text)
        output = check_output(check)
        if output:
            ET.SubElement(case, "system-out").text = _clean(output)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(result: SubmissionResult, path: Path) -> None:
    """Write the JUnit XML for ``result`` to ``path``."""
    write_atomic(path, to_junit_xml(result))
