"""Finding the student's module in submissions as they really arrive (grader.model.locate), and the metadata
of Gradescope exports as Ruby writes it. No student code runs here."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from grader.grading.archives import gradescope_metadata_entries, parse_metadata_yaml, read_gradescope_export, unpack_student_zip
from grader.model.locate import NotebookError, matches_module, notebook_code, prepare_submission
from grader.model.results import SubmissionResult

MODULE = "hello_threads.py"
OTHERS = ["fifo_queue.py", "hello_processes.py"]


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("hello_threads.py", True),
        ("HelloThreads.py", True),
        ("HELLO_THREADS.PY", True),
        ("hello-threads.py", True),
        ("hello threads.py", True),
        ("hello_threads (1).py", True),
        ("hello_threads(2).py", True),
        ("hello_threads-2.py", True),
        ("hello_threads_2.py", True),
        ("hello_threads copy.py", True),
        ("Hello Threads.ipynb", True),
        ("adalovelace_12345_67890_hello_threads.py", True),  # Canvas: <student>_<userid>_<submissionid>_<name>
        ("adalovelace_12345_67890_hello_threads-1.py", True),  # ... and its resubmission suffix
        ("ada_lovelace_LATE_12345_67890_HelloThreads.py", True),
        ("hello_threads_final.py", False),
        ("test_hello_threads.py", False),
        ("hello.py", False),
        ("threads.py", False),
        ("fifo_queue.py", False),
    ],
)
def test_names_that_stand_for_the_module(name: str, matches: bool) -> None:
    assert matches_module(name, MODULE) is matches


def test_a_module_name_ending_in_digits_is_not_eaten_by_the_suffix_rule() -> None:
    assert matches_module("task 2.py", "task_2.py") and matches_module("Task_2 (1).py", "task_2.py")
    assert not matches_module("task_3.py", "task_2.py") and not matches_module("task.py", "task_2.py")


def notebook(cells: list[tuple[str, str]]) -> bytes:
    doc = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": kind, "metadata": {}, "source": source.splitlines(keepends=True),
             **({"outputs": [], "execution_count": None} if kind == "code" else {})}
            for kind, source in cells
        ],
    }
    return json.dumps(doc).encode()


def test_notebook_code_cells_become_the_module_without_magics_and_shell_lines() -> None:
    code, dropped = notebook_code(notebook([
        ("markdown", "# Lab 2\nprint('not code')"),
        ("code", "!pip install requests\nimport time"),
        ("code", "def hello(n):\n    %time x = 1\n    return n\n"),
        ("code", "%%timeit\nhello(1)\nhello(2)"),
        ("code", "%timeit hello(3)"),
    ]))
    assert dropped == ["!pip install requests", "%time x = 1", "%%timeit", "hello(1)", "hello(2)", "%timeit hello(3)"]
    assert "not code" not in code and "pip" not in code and "timeit" not in code
    assert "# cell 2\n\nimport time" in code and "    pass\n    return n" in code
    namespace: dict[str, object] = {}
    exec(compile(code, "hello_threads.py", "exec"), namespace)  # the notebook's own code, written in this test
    assert callable(namespace["hello"])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "no list of cells"),
        (json.dumps({"nbformat": 3, "cells": []}).encode(), "nbformat 3"),
    ],
)
def test_notebooks_that_cannot_be_read_say_why(data: bytes, message: str) -> None:
    with pytest.raises(NotebookError, match=message):
        notebook_code(data)


def found_in(tmp_path: Path, files: dict[str, bytes]) -> tuple[Path, object]:
    folder = tmp_path / "student"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder, prepare_submission(folder, MODULE, tmp_path / "work", unpack=unpack_student_zip, others=OTHERS)


def test_the_module_at_the_top_is_graded_in_place(tmp_path: Path) -> None:
    folder, found = found_in(tmp_path, {MODULE: b"x = 1\n", "helpers.py": b""})
    assert found.ok and found.path == folder and found.module == folder / MODULE
    assert found.graded_file == "" and found.notes == [] and not (tmp_path / "work").exists()


@pytest.mark.parametrize(
    ("files", "graded"),
    [
        ({"HelloThreads.py": b"x = 1\n"}, "HelloThreads.py"),
        ({"lab2/hello_threads.py": b"x = 1\n", "lab2/helpers.py": b"y = 2\n"}, "lab2/hello_threads.py"),
        ({"my_solution.py": b"x = 1\n", "README.md": b""}, "my_solution.py"),
        ({"__MACOSX/._hello_threads.py": b"\0", "Lab2/Hello Threads (1).py": b"x = 1\n"}, "Lab2/Hello Threads (1).py"),
    ],
)
def test_renamed_and_nested_modules_are_staged_under_the_module_name(
    tmp_path: Path, files: dict[str, bytes], graded: str
) -> None:
    _, found = found_in(tmp_path, files)
    assert found.ok and found.graded_file == graded, found
    assert found.notes == [f"graded {graded} as {MODULE}"]
    assert found.module == found.path / MODULE and found.module.read_bytes() == b"x = 1\n"
    if "lab2/helpers.py" in files:
        assert (found.path / "helpers.py").read_bytes() == b"y = 2\n"  # what was beside it comes along


def test_a_zip_in_the_folder_is_opened_safely(tmp_path: Path) -> None:
    archive = tmp_path / "lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("lab2/hello_threads.py", "x = 1\n")
        zf.writestr("__MACOSX/lab2/._hello_threads.py", "\0")
    _, found = found_in(tmp_path, {"lab2.zip": archive.read_bytes()})
    assert found.ok and found.graded_file == "lab2.zip/lab2/hello_threads.py"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escaped.py", "x = 1\n")
    (tmp_path / "e").mkdir()
    found = prepare_submission(tmp_path / "e", MODULE, tmp_path / "w2", unpack=unpack_student_zip)
    assert not found.ok
    (tmp_path / "e" / "evil.zip").write_bytes(evil.read_bytes())
    found = prepare_submission(tmp_path / "e", MODULE, tmp_path / "w3", unpack=unpack_student_zip)
    assert not found.ok and any("evil.zip (not opened: refused entry" in s for s in found.seen)
    assert not list(tmp_path.rglob("escaped.py"))


@pytest.mark.parametrize(
    ("files", "problem", "seen"),
    [
        ({}, "the submission is empty; expected a file named hello_threads.py", []),
        (
            {MODULE: b"", "lab2/hello_threads.py": b""},
            "found hello_threads.py and lab2/hello_threads.py, and any of them could be hello_threads.py: keep one",
            ["hello_threads.py", "lab2/hello_threads.py"],
        ),
        (
            {"fifo_queue.py": b""},
            "the only Python file is fifo_queue.py, the file of the fifo_queue assignment",
            ["fifo_queue.py"],
        ),
        ({"a.py": b"", "b.py": b""}, "found 2 Python files named otherwise (a.py and b.py)", ["a.py", "b.py"]),
        ({"report.pdf": b"", ".DS_Store": b""}, "the submission holds no Python file or notebook", ["report.pdf"]),
        ({"Lab 2.ipynb": b"{oops"}, "Lab 2.ipynb is not a notebook Jupyter can read: it is not JSON", ["Lab 2.ipynb"]),
    ],
)
def test_nothing_gradable_says_what_was_seen_and_expected(
    tmp_path: Path, files: dict[str, bytes], problem: str, seen: list[str]
) -> None:
    _, found = found_in(tmp_path, files)
    assert not found.ok and problem in found.problem, found.problem
    assert found.seen == seen


def test_what_was_seen_is_bounded(tmp_path: Path) -> None:
    _, found = found_in(tmp_path, {f"notes{i:02}.txt": b"" for i in range(40)})
    assert len(found.seen) == 16 and found.seen[-1] == "... and 25 more"


def test_a_notebook_given_as_the_submission_is_graded_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "Lab 2.ipynb"
    path.write_bytes(notebook([("code", "!pip install x\nimport time"), ("code", "%timeit time.sleep(0)")]))
    found = prepare_submission(path, MODULE, tmp_path / "work")
    assert found.ok and found.graded_file == "Lab 2.ipynb"
    assert found.notes[0] == f"graded Lab 2.ipynb as {MODULE}"
    assert found.notes[1].startswith("2 lines of Lab 2.ipynb dropped: IPython magics and shell commands")
    assert "import time" in found.module.read_text()


def test_the_result_model_keeps_the_no_submission_status() -> None:
    result = SubmissionResult("hello_threads", "ada", "class/ada", no_submission="the submission is empty", seen=["x.txt"])
    assert result.status == "no_submission" and not result.graded and result.error is None
    again = SubmissionResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result and again.to_dict()["status"] == "no_submission"
    graded = SubmissionResult("hello_threads", "bob", "b", graded_file="HelloThreads.py", notes=["graded HelloThreads.py as x"])
    assert SubmissionResult.from_dict(graded.to_dict()) == graded and graded.status == "graded"
    assert SubmissionResult.from_dict({"assignment": "a"}).status == "graded"  # results written before these fields


# -- Gradescope metadata as Ruby writes it -----------------------------------------------------

RUBY_METADATA = """\
---
submission_301:
  :submitters:
  - :name: Ann Smith
    :sid: '007'
    :email: ann@example.edu
  :created_at: !ruby/object:ActiveSupport::TimeWithZone
    utc: 2026-10-01 19:00:00.000000000 Z
    zone: !ruby/object:ActiveSupport::TimeZone
      name: America/Los_Angeles
    time: 2026-10-01 12:00:00.000000000 Z
  :score: !ruby/object:BigDecimal 18:0.12e2
  :results: !ruby/hash:ActiveSupport::HashWithIndifferentAccess
    output: >-
      A long line of autograder output that Ruby's YAML writer folds over
      several lines because it is longer than eighty characters
  :history: []
submission_302:
  :submitters: [{:name: "Bob
submission_303:
  :submitters:
  - :name: Cy
    :sid: 00123
"""


def test_ruby_yaml_with_folded_values_and_tags_is_read_as_plain_data() -> None:
    data = parse_metadata_yaml(RUBY_METADATA.split("submission_302")[0])
    first = data["submission_301"]
    assert first[":submitters"] == [{":name": "Ann Smith", ":sid": "007", ":email": "ann@example.edu"}]
    assert first[":results"]["output"] == (
        "A long line of autograder output that Ruby's YAML writer folds over several lines because it is longer "
        "than eighty characters"
    )
    assert first[":score"] == "18:0.12e2" and first[":history"] == []
    assert first[":created_at"]["zone"] == {"name": "America/Los_Angeles"}


def test_one_broken_metadata_entry_only_costs_its_own_submission(tmp_path: Path) -> None:
    entries, broken = gradescope_metadata_entries(RUBY_METADATA)
    assert set(entries) == {"submission_301", "submission_303"} and set(broken) == {"submission_302"}
    assert entries["submission_303"][":submitters"][0][":sid"] == "00123"  # ids stay text
    assert broken["submission_302"].startswith("line ")
    for key in ("submission_301", "submission_302", "submission_303"):
        (tmp_path / key).mkdir()
    (tmp_path / "submission_metadata.yml").write_text(RUBY_METADATA)
    subs = {s.student: s for s in read_gradescope_export(tmp_path)}
    assert set(subs) == {"Ann Smith", "Cy", "submission_302"}
    assert subs["Ann Smith"].metadata["created_at"] == "2026-10-01 12:00:00.000000000 Z"
    assert subs["Ann Smith"].problem == "" and subs["Cy"].problem == ""
    assert "the entry for submission_302 in submission_metadata.yml could not be read" in subs["submission_302"].problem
