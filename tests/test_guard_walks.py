"""The guard lets the probes' own frame walks through at once, and still refuses the student's.

An audit hook cannot be removed, so each case runs in a fresh interpreter: the sandbox's support
package is copied as ``grader_inside`` (as a sandbox has it), the guard installed over a work folder
holding the student's file, and the lockset probe over the same folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from grader.sandbox.folder import INSIDE_DIR

STUDENT = """\
import sys


def bump(counter, lock, times):
    for _ in range(times):
        with lock:
            counter.value += 1


def walk():
    return sys._getframe(0).f_code.co_name
"""

DRIVER = """\
import json, os, sys
support, work = sys.argv[1], sys.argv[2]
sys.path[:0] = [support, work]
from grader_inside import guard, probe_locks
tampers = []
guard.install(work, os.path.join(support, "grader_inside"), os.path.join(work, "out"),
              lambda kind, **fields: tampers.append(fields))
probe_locks.install({"work_dir": work})
asked = []
real_owner = guard._owner
def counting_owner(filename):  # what the hook calls for each frame while it looks for who asked
    asked.append(filename)
    return real_owner(filename)
guard._owner = counting_owner
from multiprocessing import Lock, Value
import student
counter, lock = Value("i", 0), Lock()
asked.clear()
student.bump(counter, lock, 50)
looked_up = len(asked)
try:
    student.walk()
    walked = "allowed"
except PermissionError:
    walked = "refused"
sites = sorted({(key[1], key[4]) for key in probe_locks._summary})
print(json.dumps({"value": counter.value, "looked_up": looked_up, "walked": walked, "tampers": tampers,
                  "sites": sites, "flag": getattr(getattr(guard, "probe_walk", None), "on", False)}))
"""


def test_probe_walks_pass_at_once_and_the_students_own_walk_is_refused(tmp_path: Path) -> None:
    support, work = tmp_path / "support", tmp_path / "work"
    shutil.copytree(INSIDE_DIR, support / "grader_inside", ignore=shutil.ignore_patterns("__pycache__"))
    work.mkdir()
    (work / "student.py").write_text(STUDENT)
    (tmp_path / "driver.py").write_text(DRIVER)
    done = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(support), str(work)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["value"] == 50
    # every read and write was recorded at the student's line, with no search for who asked
    assert seen["sites"] == [["read", 7], ["write", 7]], seen["sites"]
    assert seen["looked_up"] == 0, "the guard looked for who asked during the probes' own walks"
    assert seen["flag"] is False, "the walk's mark outlived the walk"
    # the student's own frame walk is refused and recorded, as before
    assert seen["walked"] == "refused"
    assert [t["audit"] for t in seen["tampers"]] == ["sys._getframe"], seen["tampers"]
    assert seen["tampers"][0]["file"] == "student.py" and seen["tampers"][0]["line"] == 11
