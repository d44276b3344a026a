"""`grader grade --shard`, `grader merge` and `--check-workers`, run end to end as an instructor runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, grader_command

from grader.grading.grade import default_check_workers, pytest_command
from grader.grading.shards import ShardError, parse_shard, select_shard
from grader.model.assignment import find_assignment


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(grader_command(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environ = dict(os.environ)
    environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmpdir"))
    environ.pop("PYTEST_ADDOPTS", None)
    environ["PYTHONDONTWRITEBYTECODE"] = "1"
    return environ


@pytest.fixture(scope="module")
def shards(tiny_class: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The tiny class graded as 3 shards, side by side (shard 2 with --check-workers 2)."""
    base = tmp_path_factory.mktemp("shards")
    outs = [base / f"shard-{i}" for i in (1, 2, 3)]
    procs = []
    for i, out in enumerate(outs, 1):
        extra = ["--check-workers", "2"] if i == 2 else ["--check-workers", "1"]
        args = ["grade", "hello_processes", str(tiny_class), "--out", str(out), "--shard", f"{i}/3", "-j", "1", *extra]
        procs.append(
            subprocess.Popen(grader_command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        )
    for i, proc in enumerate(procs, 1):
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
        assert f"(shard {i}/3: 1 of 3)" in stderr
        assert ("2 check(s) at a time each" if i == 2 else "1 check(s) at a time each") in stderr
    return outs


def gradebook(folder: Path) -> str:
    return (folder / "grades.csv").read_text(encoding="utf-8")


def checks_of(folder: Path) -> dict[str, list[tuple[str, str, float]]]:
    found = {}
    for path in sorted((folder / "students").glob("*.result.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[path.name] = [(c["id"], c["status"], c["points"]) for c in data["checks"]]
    return found


def test_three_shards_merged_give_the_gradebook_of_one_run(
    shards: list[Path], tiny_class_graded: Path, env: dict[str, str], tmp_path: Path
) -> None:
    # each shard holds one student, in a result folder of its own
    held = [json.loads((s / "batch.json").read_text())["students"] for s in shards]
    assert sorted(e["student"] for entries in held for e in entries) == ["ada", "bob", "cy"]
    assert all(len(entries) == 1 for entries in held)
    assert all((s / "index.html").is_file() and len(gradebook(s).splitlines()) == 2 for s in shards)

    merged = tmp_path / "merged"
    done = run(["merge", *map(str, reversed(shards)), "--out", str(merged)], env, tmp_path)  # any order
    assert done.returncode == 0, done.stderr
    assert checks_of(merged) == checks_of(tiny_class_graded)  # (shows the differing checks first)
    assert gradebook(merged) == gradebook(tiny_class_graded)
    assert sorted(p.name for p in (merged / "students").iterdir()) == sorted(
        p.name for p in (tiny_class_graded / "students").iterdir()
    )
    lines = gradebook(merged).splitlines()
    assert [line.split(",")[:3] for line in lines[1:]] == [["ada", "14", "14"], ["bob", "7", "14"], ["cy", "0", "14"]]
    index = (merged / "index.html").read_text(encoding="utf-8")
    assert all(f"students/{name}.html" in index for name in ("ada", "bob", "cy"))
    # the merged folder is itself a complete result folder: merging it alone changes nothing
    again = tmp_path / "again"
    assert run(["merge", str(merged), "--out", str(again)], env, tmp_path).returncode == 0
    assert gradebook(again) == gradebook(merged)


def edited_copy(folder: Path, target: Path, **changes: object) -> Path:
    shutil.copytree(folder, target)
    manifest = target / "batch.json"
    data = json.loads(manifest.read_text())
    data.update(changes)
    manifest.write_text(json.dumps(data))
    return target


def test_merge_refuses_what_is_not_one_sharded_class(shards: list[Path], env: dict[str, str], tmp_path: Path) -> None:
    one, two, three = map(str, shards)

    def error(*folders: str, out: str = "merged") -> str:
        done = run(["merge", *folders, "--out", str(tmp_path / out)], env, tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
        assert out != "merged" or not (tmp_path / out).exists()  # nothing written
        return done.stderr

    assert "overlapping shards" in error(one, two, three, one)
    twin = edited_copy(shards[0], tmp_path / "twin")
    assert "overlapping shards" in error(one, str(twin), two, three)
    assert "shard(s) 3/3 missing" in error(one, two)
    assert "result folder not found" in error(one, two, str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    assert "not a result folder of grader grade" in error(one, two, str(tmp_path / "empty"))
    other = edited_copy(shards[2], tmp_path / "other", assignment="fifo_queue")
    assert "different assignments" in error(one, two, str(other))
    stranger = edited_copy(shards[2], tmp_path / "stranger", class_fingerprint="0" * 16)
    assert "different classes" in error(one, two, str(stranger))
    resliced = edited_copy(shards[2], tmp_path / "resliced", shard=[3, 4])
    assert "sliced differently" in error(one, two, str(resliced))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "batch.json").write_text("{not json")
    assert "unreadable" in error(one, two, str(tmp_path / "broken"))
    assert "one of the folders to merge" in error(one, two, three, out=str(shards[0]))


@pytest.mark.parametrize("shard", ["0/3", "4/3", "1/0", "a/b", "3", "-1/3", "1/3/5"])
def test_malformed_shard_is_one_clear_error(shard: str, tiny_class: Path, env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = run(["grade", "hello_processes", str(tiny_class), "--out", str(out), f"--shard={shard}"], env, tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("grader: error: --shard") and "I/N" in done.stderr
    assert not out.exists()  # nothing graded, nothing written


def test_shards_are_balanced_deterministic_and_cover_the_class() -> None:
    names = [f"student{i:02d}" for i in range(10)][::-1]
    slices = [select_shard(names, i, 3) for i in (1, 2, 3)]
    assert sorted(p for s in slices for p in s) == list(range(10))
    assert [len(s) for s in slices] == [4, 3, 3]
    assert [names[p] for p in slices[0]] == ["student09", "student06", "student03", "student00"]
    assert select_shard(names, 1, 3) == slices[0]
    assert parse_shard(" 2 / 3 ") == (2, 3)
    with pytest.raises(ShardError):
        parse_shard("3/2")


def test_check_workers_run_checks_side_by_side_with_the_same_verdicts(env: dict[str, str], tmp_path: Path) -> None:
    submission = ROOT / "tests" / "corpus" / "hello_processes" / "buggy" / "threads.py"
    results = {}
    procs = {}
    for workers in ("1", "3"):
        target = tmp_path / f"r{workers}.json"
        args = ["check", "hello_processes", str(submission), "--check-workers", workers, "--result", str(target)]
        procs[workers] = (subprocess.Popen(grader_command(*args), stdout=subprocess.PIPE, text=True, env=env), target)
    for workers, (proc, target) in procs.items():
        proc.communicate(timeout=600)
        assert proc.returncode == 1  # lost points
        data = json.loads(target.read_text())
        results[workers] = sorted((c["id"], c["status"], c["points"]) for c in data["checks"])
    assert results["1"] == results["3"]
    assert len(results["1"]) == 10


def test_check_workers_must_be_positive(env: dict[str, str], tmp_path: Path) -> None:
    for verb in (["check", "hello_processes", str(ROOT / "reference" / "hello_processes.py")],
                 ["grade", "hello_processes", str(tmp_path), "--out", str(tmp_path / "out")]):
        done = run([*verb, "--check-workers", "0"], env, tmp_path)
        assert done.returncode == 2
        assert done.stderr == "grader: error: --check-workers must be at least 1, got 0\n"


def test_check_workers_default_fills_the_cpus_that_parallel_submissions_leave() -> None:
    assert default_check_workers(1, cpus=2) == 2
    assert default_check_workers(2, cpus=2) == 1
    assert default_check_workers(3, cpus=2) == 1
    assert default_check_workers(16, cpus=2) == 1
    assert default_check_workers(2, cpus=8) == 4
    assert default_check_workers(1, cpus=1) == 1
    assignment = find_assignment("hello_processes")
    one = pytest_command(assignment, Path("s.py"), Path("r.json"), check_workers=1)
    assert "xdist.plugin" not in one
    three = pytest_command(assignment, Path("s.py"), Path("r.json"), check_workers=3)
    assert three[-4:] == ["-p", "xdist.plugin", "-n", "3"]
