"""A class as it really arrives: renamed, nested, zipped files, a notebook, and students with nothing gradable.

Graded end to end with `grader grade` (and `grader check`) in subprocesses; everything is written under tmp_path.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import CORPUS, grader_command

CORRECT = CORPUS / "hello_threads" / "correct"
BUGGY = CORPUS / "hello_threads" / "buggy"
FULL = 13.0

NOTEBOOK_CELLS = [
    ("markdown", "# Lab 2: hello, threads\nMy solution."),
    ("code", "!pip install --quiet threading-helpers\nimport random\nimport time\nfrom threading import Thread"),
    ("code", "def hello(n, delay):\n    time.sleep(delay)\n    print(f\"[{n}] Hello!\")"),
    (
        "code",
        "def main(count=10, delay=None):\n    threads = []\n    for i in range(count):\n"
        "        d = delay if delay is not None else random.randint(1, 3)\n"
        "        t = Thread(target=hello, args=(i, d))\n        threads.append(t)\n        t.start()\n"
        "    for t in threads:\n        t.join()\n    print(\"Done!\")",
    ),
    ("code", "%timeit main(4, 0.01)"),
]


def write_notebook(path: Path) -> None:
    cells = []
    for kind, source in NOTEBOOK_CELLS:
        cell = {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True)}
        if kind == "code":
            cell.update(outputs=[], execution_count=None)
        cells.append(cell)
    doc = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"language_info": {"name": "python"}}, "cells": cells}
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")


def put(folder: Path, name: str, source: Path) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, folder / name)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine students, each handing in hello_threads the way real students do."""
    klass = tmp_path_factory.mktemp("messy") / "class"
    klass.mkdir()
    put(klass / "ada", "hello_threads (1).py", CORRECT / "target_list.py")  # the LMS's download suffix
    put(klass / "bob", "HelloThreads.py", BUGGY / "no_join.py")  # renamed, and buggy: a real score below full
    put(klass / "cy", "cylee_12345_67890_hello_threads-1.py", CORRECT / "kwargs_helpers.py")  # a Canvas download name
    put(klass / "dee", "lab2/hello_threads.py", CORRECT / "thread_subclass.py")  # nested
    put(klass / "eve", "notes.txt", CORRECT / "join_via_enumerate.py")
    with zipfile.ZipFile(klass / "eve" / "lab2.zip", "w") as zf:  # a zipped folder, with macOS litter
        zf.write(CORRECT / "join_via_enumerate.py", "lab2/hello_threads.py")
        zf.writestr("__MACOSX/lab2/._hello_threads.py", b"\0\x05\x16\x07")
    (klass / "eve" / "notes.txt").unlink()
    (klass / "fay").mkdir()
    write_notebook(klass / "fay" / "Lab 2.ipynb")
    (klass / "gus").mkdir()  # empty
    put(klass / "hal", "hello_threads.py", CORRECT / "target_list.py")  # two candidates
    put(klass / "hal", "lab2/hello_threads.py", BUGGY / "no_join.py")
    put(klass / "ivy", "fifo_queue.py", CORPUS / "fifo_queue" / "correct" / "context_subclass.py")  # another assignment
    return klass


@pytest.fixture(scope="module")
def graded(messy: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    base = tmp_path_factory.mktemp("messy-graded")
    env = _env(base)
    out = base / "out"
    proc = subprocess.run(
        grader_command("grade", "hello_threads", str(messy), "--out", str(out), "-j", "2"),
        capture_output=True, text=True, env=env, cwd=base, timeout=900,
    )
    return proc, out


def _env(base: Path) -> dict[str, str]:
    import os

    env = dict(os.environ)
    env["TMPDIR"] = str(base)
    env.pop("PYTEST_ADDOPTS", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def results(out: Path) -> dict[str, dict]:
    return {
        (data := json.loads(p.read_text()))["student"]: data for p in (out / "students").glob("*.result.json")
    }


GRADED_AS = {
    "ada": "hello_threads (1).py",
    "bob": "HelloThreads.py",
    "cy": "cylee_12345_67890_hello_threads-1.py",
    "dee": "lab2/hello_threads.py",
    "eve": "lab2.zip/lab2/hello_threads.py",
    "fay": "Lab 2.ipynb",
}
NO_SUBMISSION = {
    "gus": ("the submission is empty", []),
    "hal": (
        "found hello_threads.py and lab2/hello_threads.py, and any of them could be hello_threads.py: keep one",
        ["hello_threads.py", "lab2/hello_threads.py"],
    ),
    "ivy": ("the only Python file is fifo_queue.py, the file of the fifo_queue assignment", ["fifo_queue.py"]),
}


def test_every_student_gets_the_outcome_of_what_they_handed_in(graded: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = graded
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "grader: 3 students had no gradable submission: gus, hal, ivy" in proc.stderr
    assert "could not be graded" not in proc.stderr and "Traceback" not in proc.stderr
    assert "[9/9]" in proc.stderr and "gus: NO SUBMISSION FOUND" in proc.stderr
    found = results(out)
    assert set(found) == set(GRADED_AS) | set(NO_SUBMISSION)
    for student, shown in GRADED_AS.items():
        data = found[student]
        assert data["status"] == "graded" and data["error"] is None, (student, data["error"], data["error_detail"])
        assert data["graded_file"] == shown
        assert data["notes"][0] == f"graded {shown} as hello_threads.py"
        assert data["max_score"] == FULL
        assert (data["score"] < FULL) == (student == "bob"), (student, data["score"], data["checks"])
    assert found["fay"]["notes"][1].startswith("2 lines of Lab 2.ipynb dropped: IPython magics and shell commands")
    for student, (why, seen) in NO_SUBMISSION.items():
        data = found[student]
        assert data["status"] == "no_submission" and why in data["no_submission"]
        assert data["seen"] == seen and data["checks"] == [] and data["score"] == 0


def test_the_reports_keep_no_submission_apart_from_zeros(graded: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = graded
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert list(rows["ada"])[:3] == ["student", "score", "max_score"]
    assert rows["ada"]["score"] == "13" and float(rows["bob"]["score"]) < 13
    for student in NO_SUBMISSION:
        assert rows[student]["score"] == "" and rows[student]["max_score"] == ""  # empty, never a zero
    index = (out / "index.html").read_text()
    table, missing = index.split('id="students"')[1].split('id="no-submission"')
    assert all(f">{s}</a>" in table for s in GRADED_AS) and not any(f">{s}</a>" in table for s in NO_SUBMISSION)
    assert all(f">{s}</a>" in missing for s in NO_SUBMISSION) and "lab2/hello_threads.py" in missing
    page = (out / "students" / "hal.html").read_text()
    assert "No submission found" in page and "<code>lab2/hello_threads.py</code>" in page
    assert "graded lab2.zip/lab2/hello_threads.py as hello_threads.py" in (out / "students" / "eve.html").read_text()
    gradescope = json.loads((out / "students" / "ivy.gradescope.json").read_text())
    assert gradescope["score"] == 0 and gradescope["tests"][0]["name"] == "No submission found"
    assert gradescope["tests"][0]["visibility"] == "visible" and "fifo_queue.py" in gradescope["output"]


def test_check_names_the_file_it_graded(messy: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    folder = tmp_path / "student"
    shutil.copytree(messy / "ada", folder)
    (folder / "hello_threads (1).py").rename(folder / "HelloThreads.py")
    procs = [
        subprocess.Popen(grader_command("check", "hello_threads", str(path)), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        for path in (folder, messy / "fay" / "Lab 2.ipynb")
    ]
    (folder_out, _), (notebook_out, _) = (p.communicate(timeout=600) for p in procs)
    assert procs[0].returncode == 0, folder_out
    assert "Note: graded HelloThreads.py as hello_threads.py." in folder_out and "Score: 13/13" in folder_out
    assert procs[1].returncode == 0, notebook_out
    assert "Note: graded Lab 2.ipynb as hello_threads.py." in notebook_out
    assert "Note: 2 lines of Lab 2.ipynb dropped" in notebook_out and "`!pip install --quiet threading" in notebook_out


def test_check_without_a_gradable_file_exits_1_and_says_what_it_saw(messy: Path, tmp_path: Path) -> None:
    proc = subprocess.run(grader_command("check", "hello_threads", str(messy / "hal")), capture_output=True, text=True,
                          env=_env(tmp_path), cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        "No submission found: found hello_threads.py and lab2/hello_threads.py, and any of them could be "
        "hello_threads.py: keep one (delete or rename the others) and submit again." in proc.stdout
    )
    assert "Files seen: hello_threads.py, lab2/hello_threads.py" in proc.stdout
