"""The Gradescope autograder: the zip ``grader gradescope`` builds, and what runs inside it.

Gradescope's layout (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
the zip is unpacked in ``/autograder/source``; ``setup.sh`` runs once as root
when the image is built; ``run_autograder`` runs as root for each submission,
with the student's files in ``/autograder/submission``, and must leave
``/autograder/results/results.json``.

The zip holds::

    setup.sh, run_autograder       # from grader/gradescope_files/
    autograder.json                # which assignment, which grader version, other assignments' module names
    wheels/concurrency_grader-<version>-py3-none-any.whl
    assignments/<name>/            # the assignment folder: config, checks, drivers, starter

and no reference solution. ``setup.sh`` installs the wheel into
``/autograder/venv``. ``run_autograder`` calls ``python -m grader.grading.autograder
run``, which (as the trusted side, root):

1. becomes a child subreaper, so every process started below it comes back to it;
2. hardens the layout (:func:`harden`): the grader's files, the checks, the
   installed packages, the submission metadata and the results folder become
   readable and writable by root only, while the interpreter itself stays
   usable, so student code run under an unprivileged user can read none of
   them and cannot write ``results.json``;
3. grades ``/autograder/submission`` (a crash of the grader becomes an
   "Autograder failed" result, the traceback in a hidden test);
4. kills and reaps every process still left below it (:func:`end_descendants`);
5. only then writes ``results.json`` (atomically, replacing anything planted there).

``GRADER_AUTOGRADER_ROOT`` moves ``/autograder`` elsewhere (for tests).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import stat
import sys
import time
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader.exporters.files import write_atomic
from grader.exporters.gradescope import (
    gradescope_failure,
    read_submission_metadata,
    student_line,
    to_gradescope,
    write_gradescope_document,
)
from grader.exporters.terminal import VERBOSE, render_text
from grader.grading.grade import grade_submission, let_gradings_fork_this_process
from grader.model.assignment import CONFIG_NAME, Assignment
from grader.model.locate import other_modules
from grader.processes import become_subreaper, end_descendants

__all__ = [
    "ROOT_ENV",
    "AutograderError",
    "autograder_root",
    "build_wheel",
    "build_zip",
    "end_descendants",
    "harden",
    "main",
    "run",
]

ROOT_ENV = "GRADER_AUTOGRADER_ROOT"
DEFAULT_ROOT = Path("/autograder")
DISTRIBUTION = "concurrency-grader"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
FILES_DIR = PACKAGE_DIR / "gradescope_files"
CONFIG_FILE = "autograder.json"
# Never shipped: caches, version control, and anything that looks like a solution.
EXCLUDED_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".venv", "venv"}
SOLUTION_DIRS = {"reference", "references", "solution", "solutions"}
# Folders of an installed grader package that are not part of the grader itself.
PACKAGE_DATA_DIRS = {"assignments", "examples"}
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class AutograderError(RuntimeError):
    """The autograder zip cannot be built, or the layout it runs in is broken."""


def autograder_root() -> Path:
    """``$GRADER_AUTOGRADER_ROOT`` or ``/autograder``."""
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


# -- building ------------------------------------------------------------------
def _walk(folder: Path, skip: set[str]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in skip and not os.path.islink(os.path.join(dirpath, d)))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in (".pyc", ".pyo") or path.is_symlink() or not path.is_file():
                continue
            yield path


def _zip_entry(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def build_wheel() -> tuple[str, bytes]:
    """A wheel of the grader as installed here: ``(file name, bytes)``.

    Built from the package's own files and the installed distribution's
    metadata (so the dependencies pip installs are the declared ones), with no
    build backend and no network: this works from an editable install, a
    regular one, or offline. Bundled assignments are left out; the zip carries
    the one assignment it grades.
    """
    from importlib import metadata as importlib_metadata  # not at import: `grader check` never reads it
    try:
        dist = importlib_metadata.distribution(DISTRIBUTION)
    except importlib_metadata.PackageNotFoundError:
        raise AutograderError(
            f"the {DISTRIBUTION} distribution is not installed (run `pip install -e .` in the source tree)"
        ) from None
    meta = dist.read_text("METADATA")
    if not meta:
        raise AutograderError(f"the installed {DISTRIBUTION} has no METADATA")
    version = dist.version
    stem = f"{DISTRIBUTION.replace('-', '_')}-{version}"
    info_dir = f"{stem}.dist-info"
    files: list[tuple[str, bytes]] = []
    for path in _walk(PACKAGE_DIR, EXCLUDED_DIRS | PACKAGE_DATA_DIRS):
        rel = path.relative_to(PACKAGE_DIR)
        files.append((f"grader/{rel.as_posix()}", path.read_bytes()))
    wheel_meta = (
        f"Wheel-Version: 1.0\nGenerator: concurrency-grader {version}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files.append((f"{info_dir}/METADATA", meta.encode("utf-8")))
    for licence in re.findall(r"^License-File: (.+)$", meta, re.MULTILINE):  # PEP 639: the files METADATA names
        text = dist.read_text(f"licenses/{licence.strip()}")
        if text is not None:
            files.append((f"{info_dir}/licenses/{licence.strip()}", text.encode("utf-8")))
    files.append((f"{info_dir}/WHEEL", wheel_meta.encode("utf-8")))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files.append((f"{info_dir}/entry_points.txt", entry_points.encode("utf-8")))
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in files]
    record_lines.append(f"{info_dir}/RECORD,,")
    files.append((f"{info_dir}/RECORD", ("\n".join(record_lines) + "\n").encode("utf-8")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            _zip_entry(archive, name, data)
    return f"{stem}-py3-none-any.whl", buffer.getvalue()


def build_zip(assignment: Assignment, output: Path) -> list[str]:
    """Write the Gradescope autograder zip for ``assignment`` to ``output``; returns the names it holds.

    Raises :class:`AutograderError` if the assignment folder holds a reference
    solution the zip would leak (a ``reference``/``solution`` folder), rather
    than shipping or silently dropping it.
    """
    from importlib import metadata as importlib_metadata  # not at import: `grader check` never reads it
    for dirpath, dirnames, _ in os.walk(assignment.path):
        leaked = sorted(d for d in dirnames if d.lower() in SOLUTION_DIRS)
        if leaked:
            where = Path(dirpath, leaked[0]).relative_to(assignment.path)
            raise AutograderError(
                f"the assignment folder holds {where}/, which looks like a reference solution; "
                "move it out of the assignment folder so it is not shipped to Gradescope"
            )
        dirnames[:] = [d for d in dirnames if d not in EXCLUDED_DIRS]
    wheel_name, wheel = build_wheel()
    version = importlib_metadata.version(DISTRIBUTION)
    config: dict[str, Any] = {
        "assignment": assignment.name,
        "assignment_dir": f"assignments/{assignment.name}",
        "grader_version": version,
        "wheel": f"wheels/{wheel_name}",
        "other_modules": other_modules(assignment),  # the wheel ships no other assignment: their files, by name
    }
    names: list[str] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for script in ("setup.sh", "run_autograder"):
            _zip_entry(archive, script, (FILES_DIR / script).read_bytes(), 0o755)
            names.append(script)
        _zip_entry(archive, CONFIG_FILE, (json.dumps(config, indent=1) + "\n").encode("utf-8"))
        names.append(CONFIG_FILE)
        _zip_entry(archive, str(config["wheel"]), wheel)
        names.append(str(config["wheel"]))
        for path in _walk(assignment.path, EXCLUDED_DIRS):
            name = f"{config['assignment_dir']}/{path.relative_to(assignment.path).as_posix()}"
            _zip_entry(archive, name, path.read_bytes())
            names.append(name)
    write_atomic(output, buffer.getvalue())
    return names


# -- inside the container ------------------------------------------------------
def _strip_group_other(path: Path) -> None:
    """``chmod go-rwx`` on ``path`` and everything below it (links are not followed)."""
    if path.is_symlink() or not path.exists():
        return
    os.chmod(path, stat.S_IMODE(path.lstat().st_mode) & 0o700)
    if not path.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            child = os.path.join(dirpath, name)
            mode = os.lstat(child).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(child, stat.S_IMODE(mode) & 0o700)


def harden(root: Path) -> list[str]:
    """Make the layout under ``root`` unreadable to any user but root (the owner); returns what was done.

    - ``root`` itself: ``0711``, so others may pass through it (to the
      interpreter in ``venv/bin``) but not list it;
    - ``source/`` (grader wheel, checks, config), ``submission/``,
      ``submission_metadata.json`` (holds earlier results) and ``venv/lib``
      (the installed grader and its packages): owner only;
    - ``results/``: owner only, so nobody else can create or replace
      ``results.json``; a ``results.json`` that is not a plain file is removed;
    - ``venv`` and ``venv/bin``: left readable, so an unprivileged student
      process can still start the interpreter (its standard library lives
      outside the venv; an unreadable ``site-packages`` is skipped by Python).
    """
    root = Path(root)
    if not root.is_dir():
        raise AutograderError(f"the autograder folder {root} does not exist")
    os.chmod(root, 0o711)
    for name in ("source", "submission", "submission_metadata.json"):
        _strip_group_other(root / name)
    results = root / "results"
    results.mkdir(exist_ok=True)
    os.chmod(results, 0o700)
    planted = results / "results.json"
    if planted.is_symlink() or (planted.exists() and not planted.is_file()):
        if planted.is_dir() and not planted.is_symlink():
            raise AutograderError(f"{planted} is a folder")
        planted.unlink()
    venv = root / "venv"
    for lib in ("lib", "lib64"):
        _strip_group_other(venv / lib)
    done = [
        "Gradescope layout: grader, checks, installed packages, submission metadata and results "
        f"readable and writable by {'root' if os.geteuid() == 0 else 'their owner'} only",
    ]
    return done


def _load_config(root: Path) -> tuple[Assignment, dict[str, Any]]:
    path = root / "source" / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
        folder = root / "source" / config["assignment_dir"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AutograderError(f"{path} is missing or invalid: {exc}") from None
    if not (folder / CONFIG_NAME).is_file():
        raise AutograderError(f"the assignment folder {folder} has no {CONFIG_NAME}")
    return Assignment.load(folder), config


def run(root: Path) -> int:
    """Grade ``root/submission`` and write ``root/results/results.json``; always writes a valid file."""
    started = time.monotonic()
    root = Path(root)
    become_subreaper()
    gradescope = read_submission_metadata(root / "submission_metadata.json")
    who = student_line(gradescope)
    try:
        protections = harden(root)
        assignment, config = _load_config(root)
        others = config.get("other_modules")
        others = [str(m) for m in others] if isinstance(others, list) else None
        result = grade_submission(assignment, root / "submission", student=who, others=others)
        result.metadata["gradescope"] = gradescope
        result.protections = [*result.protections, *protections]
        sys.stdout.write(render_text(result, verbosity=VERBOSE))  # the instructor's log: every protection
        doc = to_gradescope(result)
    except Exception as exc:
        detail = traceback.format_exc()
        sys.stderr.write(detail)
        doc = gradescope_failure(
            f"the grader hit an internal error ({type(exc).__name__})",
            detail,
            execution_time=time.monotonic() - started,
            student=who,
        )
    leftover = end_descendants()
    if leftover:
        sys.stdout.write(f"{leftover} leftover process(es) were killed before the results were written\n")
    write_gradescope_document(doc, root / "results" / "results.json")
    sys.stdout.flush()
    return 0


def check_install(root: Path) -> int:
    """Fail (exit 1) unless the installed grader can load the zip's assignment (run by setup.sh)."""
    from importlib import metadata as importlib_metadata  # not at import: `grader check` never reads it
    assignment, config = _load_config(Path(root))
    version = importlib_metadata.version(DISTRIBUTION)
    if version != config.get("grader_version"):
        raise AutograderError(f"installed grader {version} differs from the zip's {config.get('grader_version')}")
    print(f"concurrency-grader {version} installed; grading {assignment.name} ({assignment.title})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.grading.autograder", description="The Gradescope side of concurrency-grader."
    )
    parser.add_argument("action", choices=("run", "harden", "check-install"))
    parser.add_argument(
        "--root", type=Path, default=None, help=f"the autograder folder (default ${ROOT_ENV} or /autograder)"
    )
    args = parser.parse_args(argv)
    root = args.root or autograder_root()
    if args.action == "run":
        let_gradings_fork_this_process()  # this process is the autograder and nothing else
        return run(root)
    try:
        if args.action == "harden":
            for line in harden(root):
                print(line)
            return 0
        return check_install(root)
    except AutograderError as exc:
        print(f"grader.grading.autograder: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
