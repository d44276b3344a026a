"""Hostile submissions are graded, contained and cleaned up (``tests/corpus/hostile``).

Each entry is graded with ``grader check`` (the CLI, in a subprocess) against
``tests/assignments/hostile_target``, where every hostile file answers wrongly.
For each: the grader finishes in bounded time, writes a valid result (model
JSON and a schema-valid Gradescope ``results.json``) without full marks and
with a clear message, leaves no process running, writes nothing outside the
sandbox, leaves the grader's files unchanged, and the process tree stays under
4 GiB. Entries marked ``# needs: root`` run only as root (CI runs as root):
without a uid of their own they would hit the user's own processes and files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from conftest import grader_command
from lms_schemas import validate_gradescope

from grader.model.results import SubmissionResult

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
HOSTILE = TESTS / "corpus" / "hostile"
TARGET = TESTS / "assignments" / "hostile_target"
SECRET = "5f1c9a0e-hostile-token"
CASE_LIMIT = 100.0
TREE_LIMIT = 4 * 1024**3
ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
SPILL_PLACES = [Path("/tmp"), Path("/dev/shm"), Path("/var/tmp"), Path.home()]

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the hostile corpus targets Linux")


def _cases() -> list[Path]:
    return sorted(p for p in HOSTILE.iterdir() if p.suffix == ".py" or (p.is_dir() and not p.name.startswith(("_", "."))))


def _header(case: Path) -> dict[str, list[str]]:
    source = case / "answer.py" if case.is_dir() else case
    found: dict[str, list[str]] = {"hostile": [], "expect-message": [], "reject-message": [], "needs": []}
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        key, _, value = line.lstrip("# ").partition(":")
        if key in found:
            found[key].append(value.strip())
    return found


def _tree_hash(*folders: Path) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(str(path).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _marked(marker: str) -> list[psutil.Process]:
    """Processes whose command line or environment mentions ``marker`` (this case's folder)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            text = " ".join(proc.cmdline())
            if marker not in text:
                text = json.dumps(proc.environ())
            if marker in text and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _spilled() -> set[Path]:
    found: set[Path] = set()
    for place in SPILL_PLACES:
        try:
            found.update(place.glob("filler-*"))
        except OSError:
            continue
    return found


@dataclass
class Outcome:
    result: SubmissionResult
    gradescope: dict
    stdout: str
    html: str
    duration: float
    peak_tree: int
    leftovers: list[str] = field(default_factory=list)

    def everything(self) -> str:
        return json.dumps(self.result.to_dict()) + json.dumps(self.gradescope) + self.stdout + self.html

    def messages(self) -> str:
        return "\n".join(c.message for c in self.result.checks) + (self.result.error or "")


class TreeWatch(threading.Thread):
    """Samples the memory (RSS) of the whole process tree below a pid."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            total = 0
            try:
                procs = [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
            except psutil.Error:
                procs = []
            for proc in procs:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)
            self.stopped.wait(0.1)


def grade(case: Path, tmp_path: Path, grader_env: dict[str, str], port: int | None = None) -> Outcome:
    """Grade one hostile entry with ``grader check`` and collect what it left behind."""
    assignment = tmp_path / "assignments" / "hostile_target"
    shutil.copytree(TARGET, assignment, ignore=shutil.ignore_patterns("__pycache__"))
    submission = case
    if port is not None:
        submission = tmp_path / "submission" / case.name
        submission.parent.mkdir()
        submission.write_text(case.read_text(encoding="utf-8").replace("PORT = 0", f"PORT = {port}"), encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(grader_env, TMPDIR=str(scratch))
    out = tmp_path / "out"
    out.mkdir()
    command = grader_command(
        "check", str(assignment), str(submission), "--result", str(out / "result.json"),
        "--json", str(out / "gradescope.json"), "--html", str(out / "report.html"), "--show-output",
    )
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watch = TreeWatch(proc.pid)
    watch.start()
    try:
        stdout, _ = proc.communicate(timeout=CASE_LIMIT)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.communicate()
        pytest.fail(f"grader check {case.name} did not finish within {CASE_LIMIT:g} s")
    finally:
        watch.stopped.set()
        watch.join()
    duration = time.monotonic() - started
    text = stdout.decode("utf-8", "replace")
    assert proc.returncode in (0, 1), f"grader check exited {proc.returncode}:\n{text[-3000:]}"
    leftovers: list[str] = []
    deadline = time.monotonic() + 3
    while True:
        alive = _marked(str(tmp_path))
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for p in alive:
        try:
            leftovers.append(f"{p.pid} {p.username()} {' '.join(p.cmdline())[:200]}")
        except psutil.Error:
            continue
        p.kill()
    result = SubmissionResult.from_dict(json.loads((out / "result.json").read_text(encoding="utf-8")))
    gradescope = json.loads((out / "gradescope.json").read_text(encoding="utf-8"))
    html = (out / "report.html").read_text(encoding="utf-8")
    return Outcome(result, gradescope, text, html, duration, watch.peak, leftovers)


def check_contained(outcome: Outcome, case: Path, tmp_path: Path) -> None:
    """What every hostile entry must leave true."""
    header = _header(case)
    result = outcome.result
    assert not result.full_marks and result.score < max(result.max_score, 1), f"{case.name} got full marks"
    assert not validate_gradescope(outcome.gradescope), validate_gradescope(outcome.gradescope)
    assert result.protections, "the result does not say which protections were active"
    assert result.checks or result.error, "the result holds neither checks nor an error"
    for expected in header["expect-message"]:
        assert expected.lower() in outcome.messages().lower(), f"{expected!r} not in:\n{outcome.messages()}"
    for rejected in header["reject-message"]:
        assert rejected.lower() not in outcome.everything().lower(), f"{rejected!r} reached the report"
    for check in result.checks:
        assert check.message, f"{check.id} lost points without a message"
    assert not outcome.leftovers, f"{case.name} left processes running: {outcome.leftovers}"
    assert outcome.peak_tree < TREE_LIMIT, f"the process tree reached {outcome.peak_tree / 1024**3:.1f} GiB"
    assert "\x1b" not in outcome.everything(), "a terminal escape from the submission reached the report"
    assert "<script>alert" not in outcome.html, "markup from the submission reached the HTML report unescaped"
    assert len(outcome.everything()) < 2_000_000, "the report is not capped"
    mounted = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert not [m for m in mounted if m.startswith(str(tmp_path))], "a sandbox's tmpfs is still mounted"
    left = sorted(p.name for p in (tmp_path / "tmp").iterdir())
    assert not left, f"the grader left files in its temporary folder: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("case", _cases(), ids=lambda p: p.stem)
def test_hostile_submission_is_contained(case: Path, tmp_path: Path, grader_env: dict[str, str]) -> None:
    header = _header(case)
    if "root" in header["needs"] and not ROOT:
        pytest.skip("needs root: without a uid of its own this submission would hit the user's own processes")
    guarded = _tree_hash(REPO / "grader", REPO / "reference", TARGET)
    spilled = _spilled()
    listener = None
    port = None
    if case.stem == "loopback":
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        port = listener.getsockname()[1]
    try:
        outcome = grade(case, tmp_path, grader_env, port)
        connections = 0
        if listener is not None:
            while True:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    break
                connections += 1
                conn.close()
    finally:
        if listener is not None:
            listener.close()
    check_contained(outcome, case, tmp_path)
    assert _tree_hash(REPO / "grader", REPO / "reference", TARGET) == guarded, "the grader's files changed"
    assignment_copy = tmp_path / "assignments" / "hostile_target"
    assert _tree_hash(assignment_copy) != "" and not (assignment_copy / "conftest.py").exists()
    assert _spilled() <= spilled, f"files written outside the sandbox: {sorted(_spilled() - spilled)}"
    protections = " ".join(outcome.result.protections)
    if listener is not None:
        if "no network" not in protections:
            pytest.skip("no network namespace could be made here")
        assert connections == 0, "the submission reached a loopback listener"
    if case.stem == "read_secrets":
        if "private file system view" not in protections:
            pytest.skip("no private file system view here: the checks are readable by the student's code")
        assert SECRET not in outcome.everything(), "the submission read the hidden checks"
    print(f"{case.stem}: {outcome.duration:.1f}s, tree peak {outcome.peak_tree / 1024**2:.0f} MiB")


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="needs root: kill_parent would hit the user's own processes")
def test_hostile_submissions_in_a_batch_leave_the_others_alone(tmp_path: Path, grader_env: dict[str, str]) -> None:
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("alice", "zed"):
        (folder / f"{name}.py").write_text(GOOD_POOL, encoding="utf-8")
    for name, case in (("bob", "kill_parent"), ("carol", "fork_flood"), ("dave", "tamper_results")):
        shutil.copyfile(HOSTILE / f"{case}.py", folder / f"{name}.py")
    # the property is isolation, not speed: the good submissions get time to spare on a loaded machine
    assignment = tmp_path / "assignment" / "hostile_target"
    shutil.copytree(TARGET, assignment, ignore=shutil.ignore_patterns("__pycache__"))
    config = assignment / "assignment.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("timeout = 6", "timeout = 12"), encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    out = tmp_path / "reports"
    done = subprocess.run(
        grader_command("grade", str(assignment), str(folder), "--out", str(out), "--jobs", "2"),
        env=dict(grader_env, TMPDIR=str(scratch)), capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scores = {}
    for path in (out / "students").glob("*.result.json"):
        result = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        scores[result.student] = (result.score, result.max_score)
    assert scores["alice"] == (3, 3) and scores["zed"] == (3, 3), scores
    for name in ("bob", "carol", "dave"):
        assert scores[name][0] < 3, scores
    assert "timeout = 12" in config.read_text(encoding="utf-8"), "a submission changed the checks"
    assert not _marked(str(tmp_path))


GOOD_POOL = (
    "from multiprocessing import Pool\n\n\ndef _sq(x):\n    return x * x\n\n\n"
    "def answer():\n    return 42\n\n\ndef squares(n):\n    with Pool(2) as pool:\n        return pool.map(_sq, range(n))\n"
)


def _as_unprivileged(command: list[str]) -> list[str]:
    """``command`` run by a user without root: as root, in a user namespace that maps root to uid 1000."""
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000", *command] if ROOT else command


def _has_pid_namespace(tmp_path: Path, env: dict[str, str]) -> bool:
    """Whether a sandbox started the way :func:`_as_unprivileged` runs the grader gets its own PID namespace."""
    script = (
        "import sys\nfrom pathlib import Path\nfrom grader.sandbox.sandbox import Sandbox\n"
        f"path = Path({str(tmp_path / 'probe.py')!r})\npath.write_text('def f():\\n    return 1\\n')\n"
        "raw = Sandbox(path, 'probe').run({'kind': 'import'}, timeout=20)\nprint(' '.join(raw.protections))\n"
    )
    done = subprocess.run(_as_unprivileged([sys.executable, "-c", script]), capture_output=True, text=True,
                          timeout=60, cwd=REPO, env=env)
    return done.returncode == 0 and "own PID namespace" in done.stdout


@pytest.mark.slow
@pytest.mark.skipif(ROOT and shutil.which("unshare") is None, reason="simulates an unprivileged user with unshare")
def test_a_submission_stopping_every_process_it_sees_leaves_a_concurrent_neighbour_alone(
    tmp_path: Path, grader_env: dict[str, str]
) -> None:
    """``grade --jobs 2`` without root: every sandbox runs as the same user, so only its PID namespace keeps
    ``stop_everything`` (``SIGSTOP`` to every pid of ``/proc``) away from the neighbour graded beside it."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(grader_env, TMPDIR=str(scratch))
    if not _has_pid_namespace(tmp_path, env):  # without one, the attack would stop every process of the user
        pytest.skip("no PID namespace for an unprivileged sandbox here")
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "alice.py").write_text(GOOD_POOL, encoding="utf-8")
    shutil.copyfile(HOSTILE / "stop_everything.py", folder / "mallory.py")
    assignment = tmp_path / "assignment" / "hostile_target"
    shutil.copytree(TARGET, assignment, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "reports"
    done = subprocess.run(
        _as_unprivileged(grader_command("grade", str(assignment), str(folder), "--out", str(out), "--jobs", "2")),
        env=env, capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    scores = {}
    for path in (out / "students").glob("*.result.json"):
        result = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
        scores[result.student] = (result.score, result.max_score)
        assert any("own PID namespace" in line for line in result.protections), result.protections
    assert scores["alice"] == (3, 3), scores
    assert scores["mallory"][0] < 3, scores
    assert not _marked(str(tmp_path))


def test_every_hostile_entry_says_what_it_tries() -> None:
    for case in _cases():
        assert _header(case)["hostile"], f"{case.name} has no '# hostile:' header line"


LEAK = '''
import os
import time


def _hang():
    # a frame whose file name is "<sandbox folder>//<a host file>": joined onto the submission
    # folder it names the host file itself, which the diagnosis must never read
    code = compile("\\ntime.sleep(600)\\n", os.getcwd() + "//" + SECRET_FILE, "exec")
    exec(code, {"time": time})


def answer():
    _hang()


def squares(n):
    _hang()
'''


@pytest.mark.slow
def test_frame_file_names_cannot_print_host_files(tmp_path: Path, grader_env: dict[str, str]) -> None:
    """A hang diagnosis shows source lines only of the submission's own files, never a file a frame names."""
    secret = tmp_path / "secret.txt"
    secret.write_text("first line\nTOP-SECRET-7f3a9c on the second line\n", encoding="utf-8")
    submission = tmp_path / "submission" / "answer.py"
    submission.parent.mkdir()
    submission.write_text(f"SECRET_FILE = {str(secret)!r}\n" + LEAK, encoding="utf-8")
    outcome = grade(submission, tmp_path, grader_env)
    assert outcome.result.checks and any(c.status.value == "timed_out" for c in outcome.result.checks)
    assert "TOP-SECRET" not in outcome.everything(), "a host file named by a frame reached the report"
    assert "TOP-SECRET" not in outcome.html
