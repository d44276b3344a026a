"""`grader grade` on a small class, as an instructor runs it: a folder, a zip, Canvas and Gradescope exports.

The scores in grades.csv must agree with `grader check` on each student's work,
and markup a student prints or puts in a file name must reach the HTML as text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, grader_command

MARKUP_NAME = "<img src=x onerror=alert(1)>"
MARKUP_PRINT = '<script>alert("owned")</script>'
MARKUP_SOLUTION = (
    (ROOT / "reference" / "hello_processes.py")
    .read_text()
    .replace('print(f"[{n}] Hello!")', f"print('{MARKUP_PRINT}')\n    print(f\"[{{n}}] Hello!\")")
)


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environ = dict(os.environ)
    environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmpdir"))
    environ.pop("PYTEST_ADDOPTS", None)
    environ["PYTHONDONTWRITEBYTECODE"] = "1"
    return environ


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ann (a folder, correct), bob.py (never joins), and a student whose name and output are markup."""
    folder = tmp_path_factory.mktemp("class") / "class"
    (folder / "ann").mkdir(parents=True)
    shutil.copyfile(ROOT / "reference" / "hello_processes.py", folder / "ann" / "hello_processes.py")
    shutil.copyfile(CORPUS / "hello_processes" / "buggy" / "no_join.py", folder / "bob.py")
    (folder / f"{MARKUP_NAME}.py").write_text(MARKUP_SOLUTION)
    assert MARKUP_PRINT in MARKUP_SOLUTION
    return folder


@pytest.fixture(scope="module")
def expected(klass: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`grader check` of each student on their own (run side by side): the scores a batch must reproduce."""
    out = tmp_path_factory.mktemp("check")
    students = {"ann": klass / "ann", "bob": klass / "bob.py", MARKUP_NAME: klass / f"{MARKUP_NAME}.py"}
    procs = {}
    for n, (student, path) in enumerate(students.items()):
        args = ["check", "hello_processes", str(path), "--result", str(out / f"{n}.json"), "--html", str(out / f"{n}.html")]
        procs[student] = (
            n,
            subprocess.Popen(
                grader_command(*args, "--student", student),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
                cwd=out,
            ),
        )
    scores = {}
    for student, (n, proc) in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode in (0, 1), output
        data = json.loads((out / f"{n}.json").read_text())
        assert data["error"] is None
        scores[student] = {
            "score": data["score"],
            "max_score": data["max_score"],
            "checks": {c["id"]: c["points"] for c in data["checks"]},
            "html": (out / f"{n}.html").read_text(),
        }
    assert scores["ann"]["score"] == scores["ann"]["max_score"] == 14
    assert scores["bob"]["score"] < 14
    return scores


def read_grades(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "grades.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {row["student"]: row for row in rows}


def assert_agrees(out: Path, expected: dict[str, dict], names: dict[str, str]) -> None:
    """grades.csv row of each batch name ``names[k]`` equals `grader check` of student k."""
    header = (out / "grades.csv").read_text().splitlines()[0].split(",")
    assert header[:3] == ["student", "score", "max_score"]
    assert header[3:] == list(expected["ann"]["checks"])
    grades = read_grades(out)
    assert set(grades) == set(names.values())
    for student, name in names.items():
        row, want = grades[name], expected[student]
        assert float(row["score"]) == want["score"], name
        assert float(row["max_score"]) == want["max_score"]
        assert {c: float(row[c]) for c in want["checks"]} == want["checks"]


def assert_reports(out: Path, names: list[str]) -> None:
    index = (out / "index.html").read_text()
    for page in (out / "students").glob("*.html"):
        assert f'href="students/{page.name}"' in index
    assert len(list((out / "students").glob("*.html"))) == len(names)
    for kind in ("gradescope.json", "result.json"):
        files = list((out / "students").glob(f"*.{kind}"))
        assert len(files) == len(names), kind
        for f in files:
            json.loads(f.read_text())


def test_grade_a_folder(klass: Path, expected: dict[str, dict], env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = run(["grade", "hello_processes", str(klass), "--out", str(out), "-j", "2"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[3/3]" in proc.stderr  # plain progress lines when not on a terminal
    names = {s: s for s in expected}
    assert_agrees(out, expected, names)
    assert_reports(out, list(names))
    index = (out / "index.html").read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in index and "<img src=x" not in index
    result_files = {json.loads(p.read_text())["student"]: p for p in (out / "students").glob("*.result.json")}
    markup_page = result_files[MARKUP_NAME].with_name(result_files[MARKUP_NAME].name.replace(".result.json", ".html"))
    page = markup_page.read_text()
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in page
    assert "<script>alert(" not in page and "<img src=x" not in page
    gradescope = json.loads(result_files["bob"].with_name(result_files["bob"].name.replace(".result", ".gradescope")).read_text())
    assert gradescope["score"] == expected["bob"]["score"]
    # `grader check --html` writes the same kind of page, escaped as well
    self_check = expected[MARKUP_NAME]["html"]
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in self_check and "<script>alert(" not in self_check


def test_grade_a_zip_of_the_folder(klass: Path, expected: dict[str, dict], env: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "class.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(klass.rglob("*")):
            if path.is_file():
                zf.write(path, f"class/{path.relative_to(klass).as_posix()}")
    out = tmp_path / "reports"
    proc = run(["grade", "hello_processes", str(archive), "--out", str(out)], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_agrees(out, expected, {s: s for s in expected})


def test_grade_a_canvas_export(klass: Path, expected: dict[str, dict], env: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(klass / "ann" / "hello_processes.py", "annsmith_1001_2001_hello_processes.py")
        zf.write(klass / "bob.py", "bobjones_LATE_1002_2002_hello_processes-1.py")
        zf.write(klass / f"{MARKUP_NAME}.py", "eve_1003_2003_hello_processes.py")
    out = tmp_path / "reports"
    proc = run(["grade", "hello_processes", str(archive), "--out", str(out), "-j", "2",
                "--canvas-assignment", "Lab 2", "--canvas-assignment-id", "12345"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Canvas export" in proc.stderr
    assert f"Canvas gradebook: {out / 'canvas.csv'} (column 'Lab 2 (12345)')" in proc.stdout.splitlines()
    assert_agrees(out, expected, {"ann": "annsmith", "bob": "bobjones", MARKUP_NAME: "eve"})
    index = (out / "index.html").read_text()
    assert "late</span>" in index  # bob's late flag from the file name
    canvas = list(csv.reader(io.StringIO((out / "canvas.csv").read_text(encoding="utf-8-sig"))))
    # the header Canvas's grade import matches to the existing assignment 12345 (a plain name would add a column)
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 2 (12345)"]
    assert canvas[1][-1] == "14"
    assert sorted((row[0], row[1], row[-1]) for row in canvas[2:]) == [
        ("annsmith", "1001", "14"),
        ("bobjones", "1002", f"{expected['bob']['score']:g}"),
        ("eve", "1003", f"{expected[MARKUP_NAME]['score']:g}"),
    ]


def test_canvas_options_are_checked_before_grading(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["grade", "hello_processes", str(tmp_path / "missing.zip"), "--out", str(tmp_path / "out"),
                "--canvas-assignment-id", "lab2"], env, tmp_path)
    assert proc.returncode == 2 and "a Canvas assignment id is a number" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_grade_a_gradescope_export(klass: Path, expected: dict[str, dict], env: dict[str, str], tmp_path: Path) -> None:
    metadata = """\
submission_301:
  :submitters:
  - :name: Ann Smith
    :sid: '1001'
    :email: ann@example.edu
  :created_at: 2026-10-01 12:00:00.000000000 -07:00
submission_302:
  :submitters:
  - :name: Bob Jones
    :sid: '1002'
    :email: bob@example.edu
  :created_at: 2026-10-01 12:05:00.000000000 -07:00
submission_303:
  :submitters:
  - :name: Eve
    :sid: '1003'
    :email: eve@example.edu
"""
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("assignment_77_export/submission_metadata.yml", metadata)
        zf.write(klass / "ann" / "hello_processes.py", "assignment_77_export/submission_301/hello_processes.py")
        zf.write(klass / "bob.py", "assignment_77_export/submission_302/hello_processes.py")
        zf.write(klass / f"{MARKUP_NAME}.py", "assignment_77_export/submission_303/hello_processes.py")
    out = tmp_path / "reports"
    proc = run(["grade", "hello_processes", str(archive), "--out", str(out), "-j", "2"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Gradescope export" in proc.stderr
    assert_agrees(out, expected, {"ann": "Ann Smith", "bob": "Bob Jones", MARKUP_NAME: "Eve"})
    ann = json.loads(next(p for p in (out / "students").glob("ann-smith.result.json")).read_text())
    assert ann["metadata"]["submitters"] == [{"name": "Ann Smith", "sid": "1001", "email": "ann@example.edu"}]


def test_archive_entry_aiming_outside_is_refused_and_writes_nothing_there(env: dict[str, str], tmp_path: Path) -> None:
    archive = tmp_path / "in" / "class.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("class/ann.py", "")
        zf.writestr("class/../../escaped.py", "print('owned')")
        zf.writestr("../escaped.py", "print('owned')")
    out = tmp_path / "reports"
    proc = run(["grade", "hello_processes", str(archive), "--out", str(out)], env, tmp_path)
    assert proc.returncode == 2
    assert "grader: error: refused entry" in proc.stderr and "outside the extraction folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("escaped.py"))
    assert not (out / "index.html").exists()


def test_grade_cannot_run_without_submissions(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["grade", "hello_processes", str(tmp_path / "missing"), "--out", str(tmp_path / "r")], env, tmp_path)
    assert proc.returncode == 2
    assert "submissions not found" in proc.stderr
    proc = run(["grade", "hello_processes", str(tmp_path), "--out", str(tmp_path / "r"), "-j", "0"], env, tmp_path)
    assert proc.returncode == 2 and "-j must be at least 1" in proc.stderr


def test_demo_grades_the_sample_class(env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run(["demo", "--out", str(out), "-j", "2"], env, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Open {(out / 'index.html').resolve().as_uri()}" in proc.stdout
    assert 'href="hello_processes/index.html"' in (out / "index.html").read_text()
    grades = read_grades(out / "hello_processes")
    assert len(grades) == 10
    correct = {"ada_lovelace", "grace_hopper", "alan_turing"}
    for student, row in grades.items():
        assert (row["score"] == row["max_score"] == "14") == (student in correct), student
    hanging = json.loads((out / "hello_processes" / "students" / "dennis_ritchie.result.json").read_text())
    timed_out = [c for c in hanging["checks"] if c["status"] == "timed_out"]
    assert timed_out and all("Where each process was" in c["diagnostics"] for c in timed_out)
    assert any("go.wait()" in c["diagnostics"] for c in timed_out)  # the line where the children are stuck
    expected_full = {
        "fifo_queue": {"john_von_neumann", "frances_allen"},
        "locked_counter": {"radia_perlman", "john_mccarthy"},
        "bounded_buffer": {"niklaus_wirth", "john_hennessy"},
        "dining_philosophers": {"carl_adam_petri", "leslie_valiant"},
    }
    for name, correct in expected_full.items():
        assert f'href="{name}/index.html"' in (out / "index.html").read_text()
        rows = read_grades(out / name)
        assert len(rows) == 4, name
        for student, row in rows.items():
            assert (row["score"] == row["max_score"]) == (student in correct), (name, student, row)
    clarke = json.loads((out / "dining_philosophers" / "students" / "edmund_clarke.result.json").read_text())
    cycle = next(c for c in clarke["checks"] if c["id"] == "test_no_deadlock_possible")
    # The naive table loses the check on every run with the cycle by line: from the order its forks were
    # taken when its run ended, from the acquisitions still waiting (attempts) when it deadlocked.
    assert cycle["points"] == 0 and cycle["status"] == "failed", cycle
    assert "a deadlock is possible: thread '" in cycle["message"], cycle["message"]
    assert cycle["message"].count("philosophers.py line") >= 2, cycle["message"]
    knuth = json.loads((out / "locked_counter" / "students" / "donald_knuth.result.json").read_text())
    lockset = next(c for c in knuth["checks"] if c["id"] == "test_every_access_under_one_shared_lock")
    assert lockset["status"] == "failed" and "holding the Lock created at locked_counter.py line" in lockset["message"]


def _doubling(folder: Path) -> Path:
    """A one-check assignment of our own: fast to grade."""
    folder.mkdir()
    (folder / "assignment.toml").write_text('[assignment]\nmodule = "double.py"\ntimeout = 10\n')
    (folder / "test_double.py").write_text(
        "def test_double(submission):\n    assert submission.call('double', 21).value == 42\n"
    )
    return folder


def test_grading_again_into_the_same_out_leaves_only_the_new_class(env: dict[str, str], tmp_path: Path) -> None:
    assignment = _doubling(tmp_path / "doubling")
    first, second = tmp_path / "monday", tmp_path / "tuesday"
    for klass, students in ((first, ("ann", "bob")), (second, ("cy",))):
        klass.mkdir()
        for name in students:
            (klass / f"{name}.py").write_text("def double(x):\n    return 2 * x\n")
    out = tmp_path / "reports"
    assert run(["grade", str(assignment), str(first), "--out", str(out), "-j", "2"], env, tmp_path).returncode == 0
    assert {p.name for p in (out / "students").iterdir()} >= {"ann.html", "bob.html"}
    (out / ".DS_Store").write_bytes(b"")  # left by a file browser: not the instructor's work
    again = run(["grade", str(assignment), str(second), "--out", str(out)], env, tmp_path)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (out / "students").iterdir()) == ["cy.gradescope.json", "cy.html", "cy.result.json"]
    assert list(read_grades(out)) == ["cy"]
    manifest = json.loads((out / "batch.json").read_text())
    assert "students/cy.html" in manifest["files"] and "index.html" in manifest["files"]
    # a file grade did not write: refused before any grading, nothing touched
    (out / "notes.txt").write_text("my marking notes\n")
    refused = run(["grade", str(assignment), str(first), "--out", str(out)], env, tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"grader: error: --out {out} holds files grader grade did not write (notes.txt)")
    assert "--force" in refused.stderr and "Grading" not in refused.stderr
    assert (out / "students" / "cy.html").is_file()
    forced = run(["grade", str(assignment), str(first), "--out", str(out), "--force"], env, tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert (out / "notes.txt").read_text() == "my marking notes\n", "--force never removes what grade did not write"
    assert not (out / "students" / "cy.html").exists()
    assert sorted(read_grades(out)) == ["ann", "bob"]
