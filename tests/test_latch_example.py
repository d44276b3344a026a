"""The worked Condition example of docs/authoring.md (docs/examples/latch) grades as the docs say.

A correct latch gets full marks; one that polls loses the blocking check and one that touches the
count outside the lock loses the lockset check, each with the message the docs show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import grader_command

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "docs" / "examples" / "latch"


def check(solution: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        grader_command("check", str(EXAMPLE / "latch"), str(EXAMPLE / "solutions" / f"{solution}.py")),
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def test_the_docs_show_the_example_checks_as_they_are() -> None:
    docs = (REPO / "docs" / "authoring.md").read_text(encoding="utf-8")
    for name in ("test_latch.py", "drivers.py"):
        assert (EXAMPLE / "latch" / name).read_text(encoding="utf-8").strip() in docs, name


RELEASED = "Three threads waiting on Latch(4) all return True"
BLOCKS = "wait() blocks (it does not poll) until count_down() opens the latch."
UNDER_LOCK = "Every read and write of the latch's attributes, by every thread, holds one common lock."


def verdicts(out: str) -> dict[str, str]:
    """Check title -> PASS or FAIL, from the per-check lines of `grader check`."""
    found = {}
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[0] in ("PASS", "FAIL"):
            for title in (RELEASED, BLOCKS, UNDER_LOCK):
                if parts[3].startswith(title):
                    found.setdefault(title, parts[0])
    return found


def test_a_correct_latch_gets_full_marks(grader_env: dict[str, str]) -> None:
    out = check("latch", grader_env)
    assert "Score: 8/8" in out, out


def test_a_polling_latch_loses_the_blocking_check_only(grader_env: dict[str, str]) -> None:
    out = check("polling", grader_env)
    assert verdicts(out) == {RELEASED: "PASS", BLOCKS: "FAIL", UNDER_LOCK: "PASS"}, out
    assert "Observed: while the latch was closed, wait() kept running for " in out, out


def test_a_count_read_outside_the_lock_is_named_with_its_line(grader_env: dict[str, str]) -> None:
    # The unlocked `self.count -= 1` may also lose an update now and then (the waiters are then not
    # released and that check fails too): the lockset check is the one that fails on every run.
    out = check("unlocked_count", grader_env)
    assert verdicts(out)[BLOCKS] == "PASS" and verdicts(out)[UNDER_LOCK] == "FAIL", out
    assert "in thread 'Thread-" in out and "the latch's count at latch.py line 10 holding no lock" in out, out
