"""Safe extraction of archives and the readers of LMS exports."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from grader.grading.archives import (
    ArchiveError,
    is_canvas_export,
    parse_metadata_yaml,
    read_canvas_export,
    read_gradescope_export,
    safe_extract,
)
from grader.grading.batch import BatchError, collect_submissions, student_slugs


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_extracts_files_and_folders(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"class/ann/hello.py": b"print(1)\n", "class/bob.py": b"x = 2\n", "class/empty/": b""})
    dest = safe_extract(archive, tmp_path / "out")
    assert files_under(dest) == ["class/ann/hello.py", "class/bob.py"]
    assert (dest / "class" / "empty").is_dir()
    assert (dest / "class" / "bob.py").read_bytes() == b"x = 2\n"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../escaped.py", "'..'"),
        ("ok/../../escaped.py", "'..'"),
        ("..\\escaped.py", "'..'"),
        ("/tmp/escaped.py", "absolute path"),
        ("C:/escaped.py", "absolute path"),
        ("C:\\escaped.py", "absolute path"),
    ],
)
def test_entries_aiming_outside_are_refused_and_nothing_is_written(tmp_path: Path, name: str, reason: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", {"good.py": b"ok\n", name: b"owned\n"})
    dest = tmp_path / "sub" / "out"
    with pytest.raises(ArchiveError, match=reason):
        safe_extract(archive, dest)
    assert not (tmp_path / "escaped.py").exists() and not (tmp_path / "sub" / "escaped.py").exists()
    assert files_under(dest) == []  # refused before anything was written, even the good entry
    assert not Path("/tmp/escaped.py").exists() or Path("/tmp/escaped.py").read_bytes() != b"owned\n"


def test_symlink_entries_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("student/link")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "../../outside")
        zf.writestr("student/link/escaped.py", "owned")
    with pytest.raises(ArchiveError, match="it is a link"):
        safe_extract(archive, tmp_path / "out")
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "outside").exists()


def test_archive_with_huge_declared_size_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * 3_000_000})
    assert archive.stat().st_size < 20_000  # compresses to almost nothing
    with pytest.raises(ArchiveError, match="would unpack to 3000000 bytes, more than the limit of 1000000"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1_000_000)
    assert files_under(tmp_path / "out") == []


def test_entry_lying_about_its_size_never_writes_past_the_limit(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "liar.zip", {"zeros.bin": b"\0" * 3_000_000})
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local header, central directory
        at = data.find(signature)
        data[at + offset : at + offset + 4] = (1000).to_bytes(4, "little")
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1_000_000)
    assert sum(p.stat().st_size for p in (tmp_path / "out").rglob("*") if p.is_file()) == 0


def test_archive_with_too_many_files_is_refused(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.py": b"" for i in range(50)})
    with pytest.raises(ArchiveError, match="50 entries, more than the limit of 10"):
        safe_extract(archive, tmp_path / "out", max_files=10)
    assert files_under(tmp_path / "out") == []


def test_not_a_zip_is_an_archive_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    with pytest.raises(ArchiveError, match="not a readable zip archive"):
        safe_extract(bad, tmp_path / "out")


# -- Canvas --------------------------------------------------------------------------------


def test_canvas_files_are_grouped_per_student(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "doejane_1234_5678_hello_processes.py").write_text("jane = 1\n")
    (export / "roejohn_LATE_2222_3333_hello_processes-1.py").write_text("john = 1\n")
    (export / "smith_ann_4444_5555_hello_processes.py").write_text("ann = 1\n")
    (export / "smith_ann_4444_5555_helpers.py").write_text("helper = 1\n")
    assert is_canvas_export(export)
    subs = {s.student: s for s in read_canvas_export(export, tmp_path / "work")}
    assert set(subs) == {"doejane", "roejohn", "smith_ann"}
    jane, john, ann = subs["doejane"], subs["roejohn"], subs["smith_ann"]
    assert [p.name for p in jane.path.iterdir()] == ["hello_processes.py"]  # the folder; the finder takes the module
    assert (jane.path / "hello_processes.py").read_text() == "jane = 1\n"
    assert jane.metadata == {"lms": "canvas", "canvas_id": "1234", "canvas_submission_id": "5678", "late": False}
    assert john.metadata["late"] is True and john.metadata["canvas_id"] == "2222"
    assert [p.name for p in john.path.iterdir()] == ["hello_processes.py"]  # Canvas's "-1" resubmission suffix undone
    assert ann.path.is_dir() and sorted(p.name for p in ann.path.iterdir()) == ["hello_processes.py", "helpers.py"]


def test_canvas_student_zip_is_extracted_safely_and_a_bad_one_only_affects_its_owner(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    make_zip(export / "doejane_1234_5678_work.zip", {"work/hello_processes.py": b"jane = 1\n"})
    make_zip(export / "evil_9999_8888_work.zip", {"../../escaped.py": b"owned\n"})
    subs = {s.student: s for s in read_canvas_export(export, tmp_path / "work")}
    jane = subs["doejane"].path
    assert (jane / "hello_processes.py").read_text() == "jane = 1\n"  # hoisted out of the zip's one folder
    assert "'..'" in subs["evil"].metadata["archive_refused"]
    assert not list(tmp_path.rglob("escaped.py"))


def test_a_plain_folder_is_not_taken_for_a_canvas_export(tmp_path: Path) -> None:
    (tmp_path / "ann.py").write_text("")
    (tmp_path / "bob").mkdir()
    assert not is_canvas_export(tmp_path)


# -- Gradescope ------------------------------------------------------------------------------

GRADESCOPE_YAML = """\
---
submission_101:
  :submitters:
  - :name: Jane Doe
    :sid: '007'
    :email: jane@example.edu
  :created_at: 2026-10-01 12:00:00.000000000 -07:00
  :score: !ruby/object:BigDecimal 18:0.12e2
  :status: processed
  :history: []
submission_102:
  :submitters:
  - :name: "Ann O'Neil"
    :sid: '42'
    :email: ann@example.edu
  - :name: 'Bob ''Bobby'' Roe'  # a group submission
    :sid: '43'
    :email: bob@example.edu
  :created_at: 2026-10-02 09:30:00.000000000 -07:00
  :results:
    tests:
    - name: one
      score: 1.0
    - name: two
      score: 0.0
  :note: |
    first line
    second line
"""


def test_parse_metadata_yaml_reads_gradescope_metadata() -> None:
    data = parse_metadata_yaml(GRADESCOPE_YAML)
    first = data["submission_101"]
    assert first[":submitters"] == [{":name": "Jane Doe", ":sid": "007", ":email": "jane@example.edu"}]
    assert first[":created_at"] == "2026-10-01 12:00:00.000000000 -07:00"
    assert first[":score"] == "18:0.12e2" and first[":history"] == []
    second = data["submission_102"]
    assert [p[":name"] for p in second[":submitters"]] == ["Ann O'Neil", "Bob 'Bobby' Roe"]
    assert second[":results"]["tests"] == [{"name": "one", "score": "1.0"}, {"name": "two", "score": "0.0"}]
    assert second[":note"] == "first line\nsecond line\n"


def test_parse_metadata_yaml_names_the_bad_line() -> None:
    with pytest.raises(ValueError, match="line 3"):
        parse_metadata_yaml("a: 1\nthis is not yaml\nb: [\n")


def test_gradescope_export_names_students_from_metadata(tmp_path: Path) -> None:
    for key in ("submission_101", "submission_102", "submission_999"):
        (tmp_path / key).mkdir()
        (tmp_path / key / "hello_processes.py").write_text("")
    (tmp_path / "submission_metadata.yml").write_text(GRADESCOPE_YAML)
    subs = {s.student: s for s in read_gradescope_export(tmp_path)}
    assert set(subs) == {"Jane Doe", "Ann O'Neil + Bob 'Bobby' Roe", "submission_999"}
    jane = subs["Jane Doe"]
    assert jane.path == tmp_path / "submission_101"
    assert jane.metadata["submitters"] == [{"name": "Jane Doe", "sid": "007", "email": "jane@example.edu"}]
    assert jane.metadata["created_at"].startswith("2026-10-01")


# -- collecting a class ----------------------------------------------------------------------


def test_collect_from_a_zip_of_a_folder(tmp_path: Path) -> None:
    student_zip = tmp_path / "carol.zip"
    make_zip(student_zip, {"carol/hello_processes.py": b"carol = 1\n"})
    archive = make_zip(
        tmp_path / "class.zip",
        {
            "class/ann/hello_processes.py": b"ann = 1\n",
            "class/bob.py": b"bob = 1\n",
            "class/carol.zip": student_zip.read_bytes(),
            "class/notes.txt": b"ignored\n",
            "__MACOSX/class/._bob.py": b"junk",
        },
    )
    work = tmp_path / "work"
    work.mkdir()
    subs, kind = collect_submissions(archive, work)
    assert kind == "folder"
    assert [(s.student, s.path.name) for s in subs] == [("ann", "ann"), ("bob", "bob.py"), ("carol", "carol")]
    assert (subs[2].path / "hello_processes.py").read_text() == "carol = 1\n"
    assert subs[1].label == "class.zip/bob.py"


def test_collect_refuses_a_zip_slip_archive(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "class.zip", {"ann.py": b"", "../escaped.py": b"owned"})
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(BatchError, match="refused entry"):
        collect_submissions(archive, work)
    assert not list(tmp_path.rglob("escaped.py"))


def test_collect_from_an_empty_folder_says_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "class").mkdir()
    with pytest.raises(BatchError, match="no submissions found"):
        collect_submissions(tmp_path / "class", tmp_path)


def test_student_slugs_are_distinct_and_safe() -> None:
    slugs = student_slugs(["Jane Doe", "jane doe", "../../etc", "<b>", "Zoë"])
    assert len(set(slugs.values())) == 5
    for slug in slugs.values():
        assert slug and "/" not in slug and "." not in slug and "<" not in slug


def test_a_class_of_one_is_not_mistaken_for_a_wrapping_folder(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "one.zip", {"class/ann/hello_processes.py": b"ann = 1\n", "class/ann/helper.py": b""})
    work = tmp_path / "work"
    work.mkdir()
    subs, _ = collect_submissions(archive, work, module_file="hello_processes.py")
    assert [(s.student, s.path.name) for s in subs] == [("ann", "ann")]
    (tmp_path / "folder" / "ann").mkdir(parents=True)
    (tmp_path / "folder" / "ann" / "hello_processes.py").write_text("")
    subs, _ = collect_submissions(tmp_path / "folder", work, module_file="hello_processes.py")
    assert [s.student for s in subs] == ["ann"]


def test_canvas_entry_with_a_dot_file_name_stays_inside_the_student_folder(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "doejane_1234_5678_..").write_text("x")
    (export / "doejane_1234_5678_hello_processes.py").write_text("jane = 1\n")
    subs = read_canvas_export(export, tmp_path / "work")
    assert sorted(p.name for p in subs[0].path.iterdir()) == ["doejane_1234_5678_..", "hello_processes.py"]


def test_the_report_folder_inside_the_class_folder_is_not_a_student(tmp_path: Path) -> None:
    (tmp_path / "class" / "reports").mkdir(parents=True)
    (tmp_path / "class" / "ann.py").write_text("")
    subs, _ = collect_submissions(tmp_path / "class", tmp_path, exclude=[tmp_path / "class" / "reports"])
    assert [s.student for s in subs] == ["ann"]
