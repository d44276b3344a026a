"""End to end: build the Gradescope zip, install it as setup.sh does, grade with run_autograder.

The layout lives under a temporary root (``GRADER_AUTOGRADER_ROOT``) instead of
``/autograder``. The install is offline: the zip's wheel goes into a fresh venv
with ``pip --no-index --no-deps``, and the venv reaches the grader's
dependencies through a ``.pth`` file naming the site-packages folders of the
environment running these tests (on Gradescope, pip gets them from PyPI). One
venv serves the whole module.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from lms_schemas import strict_json, validate_gradescope

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Gradescope runs Linux containers")

REPO = Path(__file__).resolve().parent.parent
REFERENCE = REPO / "reference" / "hello_processes.py"
BUGGY = REPO / "tests" / "corpus" / "hello_processes" / "buggy"
DEPENDENCIES = (
    "pytest", "pluggy", "pytest_timeout", "xdist", "execnet", "jinja2", "markupsafe", "psutil", "tomli", "yaml",
)
METADATA = {
    "id": 98765,
    "created_at": "2026-11-25T12:00:00.000000-08:00",
    "assignment": {"title": "Hello, processes", "total_points": "14.0"},
    "users": [{"email": "ada@example.edu", "id": 4242, "name": "Ada Lovelace"}],
    "previous_submissions": [],
}


@dataclass
class Layout:
    base: Path
    root: Path  # this worker's root; its venv links to the shared one
    zip_path: Path
    install_root: Path  # the shared root setup.sh installed, with the venv itself


def _dependency_dirs() -> list[str]:
    dirs = []
    for name in DEPENDENCIES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        folder = origin.parent.parent if origin.name == "__init__.py" else origin.parent
        if str(folder) not in dirs:
            dirs.append(str(folder))
    return dirs


def _unzip(zip_path: Path, dest: Path) -> None:
    """Extract like `unzip` does, keeping the file modes stored in the zip."""
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            target = dest / info.filename
            archive.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode)


def _env(root: Path, base: Path, **extra: str) -> dict[str, str]:
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(base), "LANG": "C.UTF-8", "TMPDIR": str(tmp),
           "GRADER_AUTOGRADER_ROOT": str(root), "PIP_CONFIG_FILE": os.devnull}
    env.update(extra)
    return env


def _install(shared: Path) -> None:
    """Build the zip and do what Gradescope's image build does, in ``shared/autograder``."""
    for leftover in ("autograder", "autograder.zip", "tmp"):
        target = shared / leftover
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
    zip_path = shared / "autograder.zip"
    built = subprocess.run([sys.executable, "-m", "grader", "gradescope", "hello_processes", "-o", str(zip_path)],
                           capture_output=True, text=True, timeout=120, env={**os.environ, "TMPDIR": str(shared)})
    assert built.returncode == 0, built.stderr
    root = shared / "autograder"
    (root / "source").mkdir(parents=True)
    _unzip(zip_path, root / "source")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    purelib = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    Path(purelib, "grader-test-dependencies.pth").write_text("\n".join(_dependency_dirs()) + "\n")
    setup = subprocess.run(
        ["bash", str(root / "source" / "setup.sh")], capture_output=True, text=True, timeout=600,
        env=_env(root, shared, GRADER_PYTHON=sys.executable, GRADER_PIP_OPTIONS="--no-index --no-deps"),
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "grading hello_processes" in setup.stdout
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")  # as Gradescope's image build does


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Layout:
    """A Gradescope root for this module's tests.

    The install (zip, venv, setup.sh) is done once per test run: pytest-xdist
    workers share it through a lock in the common parent of their temporary
    folders. Each worker grades in its own root whose ``venv`` links to it.
    """
    basetemp = tmp_path_factory.getbasetemp()
    shared = (basetemp.parent if os.environ.get("PYTEST_XDIST_WORKER") else basetemp) / "gradescope-e2e-install"
    shared.mkdir(exist_ok=True)
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / ".done").exists():
            _install(shared)
            (shared / ".done").touch()
    base = tmp_path_factory.mktemp("gradescope")
    root = base / "autograder"
    root.mkdir()
    shutil.copytree(shared / "autograder" / "source", root / "source")
    shutil.copy2(shared / "autograder" / "run_autograder", root / "run_autograder")
    (root / "venv").symlink_to(shared / "autograder" / "venv")
    return Layout(base, root, shared / "autograder.zip", shared / "autograder")


def grade(root: Path, base: Path, files: dict[str, str | Path], metadata: dict | None = None,
          **env: str) -> tuple[dict, subprocess.CompletedProcess[str]]:
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    for name, content in files.items():
        target = submission / name
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_text(content)
    (root / "submission_metadata.json").write_text(json.dumps(metadata if metadata is not None else METADATA))
    (root / "results" / "results.json").unlink(missing_ok=True)
    run = subprocess.run([str(root / "run_autograder")], capture_output=True, text=True, timeout=600, cwd=root,
                         env=_env(root, base, **env))
    assert run.returncode == 0, run.stderr
    text = (root / "results" / "results.json").read_text(encoding="utf-8")
    doc = strict_json(text)
    assert validate_gradescope(doc) == [], text
    return doc, run


def by_check(doc: dict) -> dict[str, dict]:
    return {t["extra_data"]["check"]: t for t in doc["tests"]}


def test_zip_holds_the_scripts_the_grader_and_the_assignment_but_no_reference(layout: Layout) -> None:
    with zipfile.ZipFile(layout.zip_path) as archive:
        names = archive.namelist()
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        contents = [archive.read(n) for n in names]
        wheel_name = next(n for n in names if n.endswith(".whl"))
        with zipfile.ZipFile(archive.open(wheel_name)) as wheel:
            wheel_names = wheel.namelist()
    assert {"setup.sh", "run_autograder"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert "assignments/hello_processes/assignment.toml" in names
    assert "assignments/hello_processes/test_hello_processes.py" in names
    reference = REFERENCE.read_bytes()
    assert reference not in contents and not any("reference" in n for n in names + wheel_names)
    assert not any(n.startswith(("grader/assignments/", "grader/examples/")) for n in wheel_names)
    assert "grader/inside/runner.py" in wheel_names and any(n.endswith(".dist-info/METADATA") for n in wheel_names)


def test_zip_refuses_an_assignment_folder_holding_a_solution(tmp_path: Path) -> None:
    folder = tmp_path / "hello_processes"
    shutil.copytree(REPO / "assignments" / "hello_processes", folder)
    (folder / "solution").mkdir()
    shutil.copyfile(REFERENCE, folder / "solution" / "hello_processes.py")
    run = subprocess.run([sys.executable, "-m", "grader", "gradescope", str(folder), "-o", str(tmp_path / "a.zip")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "solution/, which looks like a reference solution" in run.stderr
    assert not (tmp_path / "a.zip").exists()


def test_installed_grader_is_the_one_from_the_zip(layout: Layout) -> None:
    where = subprocess.run(
        [str(layout.root / "venv" / "bin" / "python"), "-c", "import grader; print(grader.__file__)"],
        capture_output=True, text=True, check=True, cwd=layout.base, env=_env(layout.root, layout.base),
    ).stdout.strip()
    assert Path(where).resolve().is_relative_to((layout.install_root / "venv").resolve())


def test_correct_submission_gets_full_marks(layout: Layout) -> None:
    doc, run = grade(layout.root, layout.base, {"hello_processes.py": REFERENCE})
    assert doc["score"] == 14 == sum(t["max_score"] for t in doc["tests"])
    assert all(t["status"] == "passed" for t in doc["tests"])
    assert "Ada Lovelace (id 4242)" in doc["output"]
    assert doc["extra_data"]["users"][0]["id"] == 4242 and doc["extra_data"]["submission_id"] == 98765
    assert "Score: 14/14" in run.stdout, "the instructor's log shows the graded summary"


def test_a_zipped_folder_is_graded_and_the_output_names_the_file(layout: Layout) -> None:
    archive = layout.base / "lab2.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(REFERENCE, "lab2/hello_processes.py")
        zf.writestr("__MACOSX/lab2/._hello_processes.py", b"\0")
    doc, run = grade(layout.root, layout.base, {"lab2.zip": archive})
    assert doc["score"] == 14 and all(t["status"] == "passed" for t in doc["tests"])
    assert "Note: graded lab2.zip/lab2/hello_processes.py as hello_processes.py." in doc["output"]
    assert "Note: graded lab2.zip/lab2/hello_processes.py as hello_processes.py." in run.stdout


def test_no_gradable_file_is_said_visibly_with_0_points(layout: Layout) -> None:
    doc, _ = grade(layout.root, layout.base, {"fifo_queue.py": "x = 1\n"})
    assert doc["score"] == 0 and [t["name"] for t in doc["tests"]] == ["No submission found"]
    test = doc["tests"][0]
    assert test["visibility"] == "visible" and test["status"] == "failed" and test["max_score"] == 0
    assert "the only Python file is fifo_queue.py, the file of the fifo_queue assignment" in test["output"]
    assert "Files seen in your submission: fifo_queue.py." in test["output"]
    assert doc["output"].startswith("Submission of Ada Lovelace (id 4242).\nNo submission found:")


@pytest.mark.parametrize("name", ["no_join.py", "wrong_format.py"])
def test_buggy_submission_loses_the_points_of_its_bug(layout: Layout, name: str) -> None:
    path = BUGGY / name
    expected = path.read_text().splitlines()[0].split(":", 1)[1].split()
    doc, _ = grade(layout.root, layout.base, {"hello_processes.py": path})
    tests = by_check(doc)
    for check in expected:
        assert tests[check]["status"] == "failed" and tests[check]["score"] == 0, tests[check]
        assert "Observed:" in tests[check]["output"] and "Hint:" in tests[check]["output"]
    assert 0 < doc["score"] < 14


def test_crashing_submission_is_a_result(layout: Layout) -> None:
    crash = "import ctypes\n\nctypes.string_at(0)  # segfault at import\n"
    doc, _ = grade(layout.root, layout.base, {"hello_processes.py": crash})
    assert doc["score"] == 0 and len(doc["tests"]) == 10
    assert all(t["status"] == "failed" and t["output"] for t in doc["tests"])
    assert not any(t["name"].startswith("Autograder failed") for t in doc["tests"])


def test_results_are_written_after_every_student_process_is_gone(layout: Layout) -> None:
    root = layout.root
    results = root / "results" / "results.json"
    token = f"grader-e2e-daemon-{os.getpid()}-{time.monotonic_ns()}"
    # At import, a double-forked daemon in its own session that keeps appending junk to results.json.
    # It works from a folder named `token` (a program it could exec to carry the name is refused by the
    # audit hook), so it shows up in the process table by its working folder, whatever user runs it.
    hostile = f'''
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        home = os.path.join(os.environ.get("TMPDIR", "/tmp"), {token!r})
        os.makedirs(home, exist_ok=True)
        os.chdir(home)
        while True:
            try:
                with open({str(results)!r}, "a") as handle:
                    handle.write("junk\\n")
            except OSError:
                pass
            time.sleep(0.02)
    os._exit(0)

def hello(n, delay):
    pass

def main(count=10, delay=None):
    pass
'''

    def daemons() -> list[int]:
        found = []
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            if token in (proc.info["cmdline"] or []) or token in (proc.info["cwd"] or ""):
                found.append(proc.pid)
        return found

    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    submission.mkdir()
    (submission / "hello_processes.py").write_text(hostile)
    (root / "submission_metadata.json").write_text(json.dumps(METADATA))
    results.unlink(missing_ok=True)
    proc = subprocess.Popen([str(root / "run_autograder")], cwd=root, env=_env(root, layout.base),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen_alive = False
    try:
        while proc.poll() is None:
            seen_alive = seen_alive or bool(daemons())
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert seen_alive, "the daemon was never seen running, so this test shows nothing"
    assert daemons() == [], "a student process outlived run_autograder"
    doc = strict_json(results.read_text())
    assert validate_gradescope(doc) == [] and doc["score"] < 12
    time.sleep(0.3)
    assert strict_json(results.read_text()) == doc


def _second_root(layout: Layout, name: str) -> Path:
    root = layout.base / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    shutil.copytree(layout.root / "source", root / "source")
    shutil.copy2(layout.root / "run_autograder", root / "run_autograder")
    return root


def test_grader_crash_gives_autograder_failed(layout: Layout) -> None:
    root = _second_root(layout, "broken-config")
    (root / "venv").symlink_to(layout.install_root / "venv")
    (root / "source" / "assignments" / "hello_processes" / "assignment.toml").write_text("[assignment\n")
    doc, run = grade(root, layout.base, {"hello_processes.py": REFERENCE})
    assert "not valid TOML" in run.stdout, "staff see the traceback in the autograder output"
    visible = [t for t in doc["tests"] if t["visibility"] == "visible"]
    hidden = [t for t in doc["tests"] if t["visibility"] == "hidden"]
    assert [t["name"] for t in visible] == ["Autograder failed"]
    assert "Traceback" not in visible[0]["output"] and "not a verdict on your code" in visible[0]["output"]
    assert "Traceback (most recent call last)" in hidden[0]["output"] and "not valid TOML" in hidden[0]["output"]
    assert doc["score"] == 0


FAKE_PYTHON = "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\necho 'ImportError: boom' >&2\nexit 1\n"


def test_grader_that_cannot_start_still_leaves_valid_results(layout: Layout) -> None:
    root = _second_root(layout, "broken-venv")
    (root / "venv" / "bin").mkdir(parents=True)
    fake = root / "venv" / "bin" / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    doc, run = grade(root, layout.base, {"hello_processes.py": REFERENCE})
    assert "ImportError: boom" in run.stdout
    hidden = [t for t in doc["tests"] if t["visibility"] == "hidden"]
    assert doc["tests"][0]["name"] == "Autograder failed" and doc["tests"][0]["visibility"] == "visible"
    assert "ImportError: boom" in hidden[0]["output"] and "status 1" in hidden[0]["output"]
    # Not even a python3 on PATH: run_autograder writes the fixed fallback document.
    tools = layout.base / "tools"
    tools.mkdir(exist_ok=True)
    for tool in ("bash", "mktemp", "cat", "rm", "mkdir"):
        found = shutil.which(tool)
        assert found
        (tools / tool).unlink(missing_ok=True)
        (tools / tool).symlink_to(found)
    doc, _ = grade(root, layout.base, {"hello_processes.py": REFERENCE}, PATH=str(tools))
    assert [t["name"] for t in doc["tests"] if t["visibility"] == "visible"] == ["Autograder failed"]


@pytest.mark.root
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to run a probe as nobody")
def test_an_unprivileged_user_cannot_read_the_grader_or_write_results(layout: Layout) -> None:
    # The shared install root holds the venv itself (the workers' roots only link to it).
    root = layout.install_root
    grade(root, layout.base, {"hello_processes.py": REFERENCE})
    (root / "probe.txt").write_text("readable")
    (root / "probe.txt").chmod(0o644)
    site = next((root / "venv" / "lib").glob("python3*/site-packages")).relative_to(root)
    # Paths are relative to the root, so the probe needs no access to the folders above it (tmp_path's
    # parents are private to root): only the layout's own modes decide.
    script = f"""
try() {{ if eval "$2" >/dev/null 2>&1; then echo "$1 yes"; else echo "$1 no"; fi; }}
try control 'cat probe.txt'
try pyvenv 'cat venv/pyvenv.cfg'
try list_root 'ls .'
try config 'cat source/autograder.json'
try checks 'cat source/assignments/hello_processes/test_hello_processes.py'
try wheel 'ls source/wheels'
try packages 'ls {site}'
try grader 'cat {site}/grader/__init__.py'
try metadata 'cat submission_metadata.json'
try submission 'ls submission'
try results 'cat results/results.json'
try write_results 'echo x > results/results.json'
try new_result 'echo x > results/other.json'
"""
    probe = subprocess.run(["/bin/sh", "-c", script], cwd=root, user=65534, group=65534, extra_groups=[],
                           capture_output=True, text=True, timeout=60)
    seen = dict(line.split() for line in probe.stdout.splitlines())
    assert seen.pop("control") == "yes" and seen.pop("pyvenv") == "yes", probe.stdout + probe.stderr
    assert seen == dict.fromkeys(seen, "no"), seen
    assert validate_gradescope(strict_json((root / "results" / "results.json").read_text())) == []


END_DESCENDANTS = """
import os, subprocess, sys, time
import psutil
from grader.processes import end_descendants
from grader.processes import become_subreaper

assert become_subreaper()
subprocess.Popen([sys.executable, "-c", '''
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(os.environ["PIDFILE"], "w").write(str(os.getpid()))
        time.sleep(60)
    os._exit(0)
time.sleep(60)
'''])
while not os.path.exists(os.environ["PIDFILE"]) or not open(os.environ["PIDFILE"]).read():
    time.sleep(0.01)
daemon = int(open(os.environ["PIDFILE"]).read())
assert psutil.pid_exists(daemon)
print(end_descendants(), psutil.pid_exists(daemon) and psutil.Process(daemon).status() != psutil.STATUS_ZOMBIE)
"""


def test_end_descendants_kills_escaped_daemons(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", END_DESCENDANTS], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PIDFILE": str(tmp_path / "pid")})
    assert run.returncode == 0, run.stderr
    killed, alive = run.stdout.split()
    assert int(killed) == 2 and alive == "False", run.stdout
