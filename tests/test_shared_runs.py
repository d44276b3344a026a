"""A run that several checks share is made once for all the check workers of a grading, and read back only when signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from grader.checks.shared_runs import WorkerShare
from grader.evidence.run import Run
from grader.sandbox.sandbox import RawRun

ROOT = Path(__file__).resolve().parent.parent


def _run(label: str, timed_out: bool = False) -> Run:
    raw = RawRun(
        result={"call": {"ok": True, "value": 7}}, events=[{"ev": "call"}], stdout="out", stderr="", timed_out=timed_out,
        exit_status=0, duration=0.25, main_pid=4242,
    )
    return Run(raw, label=label, module_file="m.py", timeout=5.0)


def _maker(made: list[str], label: str = "made"):  # type: ignore[no-untyped-def]
    def make() -> Run:
        made.append(label)
        return _run(label)

    return make


def _graded_runs(tmp_path: Path, env: dict[str, str], workers: int) -> Counter[str]:
    log = tmp_path / f"runs-{workers}.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", "bounded_buffer", str(ROOT / "reference" / "bounded_buffer.py"),
         "--check-workers", str(workers)],
        capture_output=True, text=True, env={**env, "GRADER_RUN_LOG": str(log)}, timeout=300,
    )
    assert "Score: 19/19" in done.stdout, done.stdout[-3000:] + done.stderr[-2000:]
    return Counter(json.loads(line)["label"] for line in log.read_text().splitlines())


def test_two_check_workers_make_each_shared_run_once(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """bounded_buffer's checks share runs; two workers used to make 3 of them twice (docs/scale.md)."""
    alone = _graded_runs(tmp_path, grader_env, 1)
    side_by_side = _graded_runs(tmp_path, grader_env, 2)
    assert side_by_side == alone, f"one worker made {sorted(alone.elements())}, two made {sorted(side_by_side.elements())}"
    assert not list(tmp_path.glob("grader-shared-runs-*")), "the grading's folder of shared runs was left behind"


def test_a_run_is_made_once_and_read_back_by_the_next(tmp_path: Path) -> None:
    share, made = WorkerShare(tmp_path, b"k" * 32), []
    first = share.run_once("key", _maker(made))
    again = WorkerShare(tmp_path, b"k" * 32).run_once("key", _maker(made, "second"))
    assert made == ["made"]
    assert (again.label, again.value, again.stdout, again.raw.main_pid) == (first.label, 7, "out", 4242)
    assert WorkerShare(tmp_path, b"k" * 32).run_once("other key", _maker(made, "other")).label == "other"


@pytest.mark.parametrize("damage", ["flipped byte", "other key", "not a run", "truncated"])
def test_a_stored_run_that_is_not_signed_by_the_grading_is_made_again(tmp_path: Path, damage: str) -> None:
    """A file in the folder that a student's process could have written is never unpickled."""
    share, made = WorkerShare(tmp_path, b"k" * 32), []
    share.run_once("key", _maker(made))
    (stored,) = tmp_path.glob("*.run")
    blob = stored.read_bytes()
    if damage == "flipped byte":
        stored.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    elif damage == "other key":
        forger = WorkerShare(tmp_path, b"f" * 32)
        stored.unlink()
        forger.run_once("key", _maker([], "forged"))
    elif damage == "not a run":
        import pickle

        data = pickle.dumps({"label": "forged"})
        stored.write_bytes(share._sign(data) + data)
    else:
        stored.write_bytes(blob[:10])
    run = WorkerShare(tmp_path, b"k" * 32).run_once("key", _maker(made, "again"))
    assert made == ["made", "again"] and run.label == "again"


def test_a_run_whose_making_failed_is_made_by_the_next(tmp_path: Path) -> None:
    share, made = WorkerShare(tmp_path, b"k" * 32), []

    def broken() -> Run:
        raise RuntimeError("the check failed before its run returned")

    with pytest.raises(RuntimeError):
        share.run_once("key", broken)
    assert share.run_once("key", _maker(made)).label == "made" and made == ["made"]


def test_without_its_folder_each_worker_makes_its_own(tmp_path: Path) -> None:
    made: list[str] = []
    share = WorkerShare(tmp_path / "gone", b"k" * 32)
    share.run_once("key", _maker(made))
    share.run_once("key", _maker(made))
    assert made == ["made", "made"]


def test_workers_at_once_wait_for_the_one_making_the_run(tmp_path: Path) -> None:
    """Three processes ask for one run together: one makes it (slowly), the others wait and take it."""
    script = (
        "import sys, time, os\n"
        "from pathlib import Path\n"
        "from grader.checks.shared_runs import WorkerShare\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_shared_runs import _run\n"
        "def make():\n"
        "    with open(sys.argv[2], 'a') as f: f.write(str(os.getpid()) + '\\n')\n"
        "    time.sleep(0.5)\n"
        "    return _run('made by ' + str(os.getpid()))\n"
        "print(WorkerShare(Path(sys.argv[1]), b'k' * 32).run_once('key', make).label)\n"
    )
    log = tmp_path / "makers"
    folder = tmp_path / "share"
    folder.mkdir(mode=0o700)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(folder), str(log)], stdout=subprocess.PIPE, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        for _ in range(3)
    ]
    labels = {proc.communicate(timeout=60)[0].strip() for proc in procs}
    makers = log.read_text().split()
    assert len(makers) == 1 and labels == {f"made by {makers[0]}"}, (makers, labels)


def test_a_worker_killed_while_making_the_run_releases_it(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\nfrom grader.checks.shared_runs import WorkerShare\n"
         "def make():\n    print('making', flush=True)\n    time.sleep(60)\n"
         "WorkerShare(Path(sys.argv[1]), b'k' * 32).run_once('key', make)\n", str(tmp_path)],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "making"
    finally:
        holder.kill()
        holder.communicate()
    made: list[str] = []
    assert WorkerShare(tmp_path, b"k" * 32).run_once("key", _maker(made)).label == "made" and made == ["made"]
