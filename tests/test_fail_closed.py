"""Fail closed: as root, no student code runs without a sandbox uid of its own unless the instructor says so.

The uid lock folder is pointed (``GRADER_TEST_UID_LOCK_DIR``, a hook only tests use) at a
folder that is not root's and private, as a fallback pre-created under /tmp by another user
would be: no uid can be leased. ``grader check`` and ``grader grade`` then refuse with exit
status 2 and one line; with ``--unsafe-no-sandbox`` they grade, and every report says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import grader_command

from grader.exporters.html import render_class_html, render_student_html
from grader.exporters.prairielearn import to_prairielearn
from grader.model.results import SubmissionResult
from grader.sandbox.containment import LeaseRefused, lease_uid
from grader.uid_locks import sandbox_refusal

ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "reference" / "hello_threads.py"

pytestmark = pytest.mark.skipif(not ROOT, reason="needs root: only root leases sandbox uids")


def _foreign(tmp_path: Path, mode: int = 0o700, owner: int = 65534) -> Path:
    folder = tmp_path / "uid-locks"
    folder.mkdir(mode=mode)
    os.chmod(folder, mode)
    os.chown(folder, owner, owner)
    return folder


@pytest.mark.parametrize("case", ["not root's", "open to others", "a symbolic link"])
def test_a_lock_folder_that_is_not_roots_and_private_leases_nothing(tmp_path: Path, case: str) -> None:
    if case == "not root's":
        folder = _foreign(tmp_path)
        words = "belongs to uid 65534, not root"
    elif case == "open to others":
        folder = _foreign(tmp_path, 0o755, owner=0)
        words = r"open to other users \(mode 0755\)"
    else:
        target = _foreign(tmp_path, owner=0)
        folder = tmp_path / "link"
        folder.symlink_to(target)
        words = "is a symbolic link"
    with pytest.raises(LeaseRefused, match=words):
        lease_uid(lock_dir=folder)


def test_every_uid_taken_leases_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    held = lease_uid(base=61990, count=1, lock_dir=folder)
    assert held is not None
    try:
        with pytest.raises(LeaseRefused, match="all 1 sandbox uids"):
            lease_uid(base=61990, count=1, lock_dir=folder)
    finally:
        held.release()


def test_check_and_grade_refuse_with_one_line_and_exit_2(tmp_path: Path, grader_env: dict[str, str]) -> None:
    env = dict(grader_env, GRADER_TEST_UID_LOCK_DIR=str(_foreign(tmp_path)))
    assert sandbox_refusal() is None, "this machine's own lock folder leases uids"
    done = subprocess.run(
        grader_command("check", "hello_threads", str(REFERENCE)), env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("grader: error: refusing to run student code as root without a sandbox uid: ")
    assert "belongs to uid 65534, not root" in done.stderr and "--unsafe-no-sandbox" in done.stderr
    folder = tmp_path / "class"
    folder.mkdir()
    shutil.copyfile(REFERENCE, folder / "ada.py")
    done = subprocess.run(
        grader_command("grade", "hello_threads", str(folder), "--out", str(tmp_path / "out")),
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists(), "grade wrote reports although it refused"


def test_unsafe_no_sandbox_grades_and_says_so_in_every_report(tmp_path: Path, grader_env: dict[str, str]) -> None:
    env = dict(grader_env, GRADER_TEST_UID_LOCK_DIR=str(_foreign(tmp_path)))
    out = tmp_path / "out"
    out.mkdir()
    done = subprocess.run(
        grader_command(
            "check", "hello_threads", str(REFERENCE), "--unsafe-no-sandbox", "--result", str(out / "result.json"),
            "--json", str(out / "gradescope.json"), "--prairielearn", str(out / "pl.json"),
            "--html", str(out / "report.html"),
        ),
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "UNSAFE: graded with --unsafe-no-sandbox" in done.stdout
    assert "student code ran as root with every capability (no sandbox uid could be leased" in " ".join(done.stdout.split())
    result = SubmissionResult.from_dict(json.loads((out / "result.json").read_text(encoding="utf-8")))
    assert result.full_marks and "--unsafe-no-sandbox" in result.unsafe
    assert result.protections[0].startswith("UNSAFE, allowed by --unsafe-no-sandbox")
    assert "own unprivileged uid" not in " ".join(result.protections)
    gradescope = json.loads((out / "gradescope.json").read_text(encoding="utf-8"))
    assert "--unsafe-no-sandbox" in gradescope["output"] and gradescope["extra_data"]["unsafe_no_sandbox"]
    assert "--unsafe-no-sandbox" in json.loads((out / "pl.json").read_text(encoding="utf-8"))["message"]
    assert "Unsafe grading:" in (out / "report.html").read_text(encoding="utf-8")
    assert "Unsafe grading:" in render_class_html([result], title="class")
    assert "Unsafe grading:" in render_student_html(result)
    assert "--unsafe-no-sandbox" in to_prairielearn(result)["message"]
