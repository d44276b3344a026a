"""One diagnosis per root cause: checks that hang in the same place are one problem, with the checks it cost.

A mistake in code that several checks call (a lock never released in ``increment``) makes each of
those checks hang in the same place. Every report says the explanation once, with the first check it
cost, and names the other checks; those refer to it instead of repeating it.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import grader_command

from grader.exporters import to_gradescope
from grader.exporters._common import cause_of, check_diagnostics, check_message
from grader.model.results import CheckResult, Status, SubmissionResult

CORPUS = Path(__file__).parent / "corpus"
LOCK_NEVER_RELEASED = CORPUS / "locked_counter" / "buggy" / "lock_never_released.py"
HANGING = 6  # locked_counter checks whose runs of run() hang in increment: run() and run(3, 100), each shared


def _diagnosis(pid: int, line: int, title: str = "lock never released") -> str:
    return (f"Likely cause ({title}): the main process (pid {pid}) waits to acquire a lock at locked_counter.py, "
            f"line {line} (`lock.acquire()`).\n\nWhere each process was when the time ran out:\n\n"
            f"== main process (pid {pid}): waiting to acquire a lock ==\n  locked_counter.py, line {line}, in increment")


def _check(name: str, diagnostics: str, visibility: str = "visible") -> CheckResult:
    return CheckResult(name, name, 1, 0, Status.TIMED_OUT, f"{name} did not finish", diagnostics=diagnostics,
                       visibility=visibility)


def test_the_cause_is_the_same_whatever_the_pids_and_the_calls() -> None:
    first, second = _check("a", _diagnosis(2, 10)), _check("b", _diagnosis(7, 10))
    other_line, other_title = _check("c", _diagnosis(2, 12)), _check("d", _diagnosis(2, 10, "missing sentinel"))
    assert cause_of(first) == cause_of(second) == "lock never released at locked_counter.py, line 10"
    assert len({cause_of(first), cause_of(other_line), cause_of(other_title)}) == 3
    assert cause_of(_check("e", "")) == "" and cause_of(_check("f", "Where each process was:")) == ""


def test_a_shared_cause_is_explained_once_and_referred_to_after() -> None:
    checks = [_check("a", _diagnosis(2, 10)), _check("b", _diagnosis(7, 10)), _check("c", _diagnosis(9, 12)),
              _check("hidden", _diagnosis(4, 10), visibility="hidden")]
    first, second, third, hidden = checks
    assert check_diagnostics(first, checks) == first.diagnostics + '\n\nThis one cause also cost the check(s) "b".'
    assert check_diagnostics(second, checks) == (
        'Likely cause (lock never released): the same problem as in the check "a", which explains it and shows '
        "where each process was.")
    assert check_diagnostics(third, checks) == third.diagnostics  # another line: another cause
    assert check_diagnostics(hidden, checks) == hidden.diagnostics  # a hidden check is never named nor grouped
    assert "hidden" not in check_message(first, checks)


def test_every_output_says_a_cause_that_cost_several_checks_once(tmp_path: Path, grader_env: dict[str, str]) -> None:
    gradescope, result_json, html = tmp_path / "results.json", tmp_path / "result.json", tmp_path / "report.html"
    done = subprocess.run(
        grader_command("check", "locked_counter", str(LOCK_NEVER_RELEASED), "--json", str(gradescope),
                       "--result", str(result_json), "--html", str(html)),
        capture_output=True, text=True, env=grader_env, cwd=tmp_path, timeout=600,
    )
    assert done.returncode == 1, done.stderr
    # the terminal: one problem, with the checks it cost, explained once
    assert done.stdout.count("Likely cause (lock never released)") == 1, done.stdout
    assert f"the same problem in {HANGING} checks" in done.stdout, done.stdout
    assert done.stdout.count("== main process (pid ") == 1, done.stdout
    # Gradescope: the explanation in full in one test, the others refer to it
    tests = json.loads(gradescope.read_text())["tests"]
    explained = [t for t in tests if "Where each process was" in t["output"]]
    assert len(explained) == 1, [t["output"][:200] for t in tests]
    first = explained[0]["name"]
    referring = [t for t in tests if f'the same problem as in the check "{first}"' in t["output"]]
    assert len(referring) == HANGING - 1
    assert all(f'"{t["name"]}"' in explained[0]["output"] for t in referring)
    # the HTML report: the stacks once
    assert len(re.findall(r"== main process \(pid \d+\)", html.read_text())) == 1
    # the result model keeps each check's own diagnosis whole: the grouping is the exporters'
    checks = SubmissionResult.from_dict(json.loads(result_json.read_text())).checks
    assert sum(1 for c in checks if "Where each process was" in c.diagnostics) == HANGING
    assert len({cause_of(c) for c in checks if c.diagnostics}) == 1
    assert to_gradescope(SubmissionResult.from_dict(json.loads(result_json.read_text())))["tests"] == tests
