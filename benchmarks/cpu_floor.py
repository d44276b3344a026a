"""The CPU of grading a reference solution, against the floor: the same calls of its code run bare.

    python benchmarks/cpu_floor.py                          # every bundled assignment, 3 runs each
    python benchmarks/cpu_floor.py --runs 5 locked_counter  # some only
    python benchmarks/cpu_floor.py --markdown table.md

For each assignment, ``grader check ASSIGNMENT reference/FILE`` runs once as the first check of the
assignment on a machine (no timings kept: :mod:`grader.grading.timings`), then ``--runs`` times more
as later checks (the timings of the one before kept), each with ``GRADER_RUN_LOG`` set, so every
sandbox run of every check writes its action (the function, the driver, the arguments) to a file.
Each of those calls is then made again *bare*: a fresh ``python`` with the reference module under
the assignment's module name, ``multiprocessing`` on ``spawn`` (as in the sandbox), no probes, no
sandbox, no pytest. The floor is the summed CPU of those bare runs: what the student's code itself
costs for the calls the checks need. CPU is user + system of each command and its reaped
descendants (``getrusage``), so the sandbox's own processes and the ``spawn`` children count;
medians over the later checks and their bare runs. Run it on a quiet machine and say the load.

Beside them, the CPU of a pytest session alone (:func:`pytest_alone`): a fresh ``python -m pytest``
that collects and passes one empty test, with no plugin but pytest's own. No check made with pytest
can cost less than that session plus the floor, so the column ``(pytest alone + floor) / floor`` is
the lowest ratio any pytest-based grading of that assignment could reach.

The last column is the lowest ratio a grading by this grader could reach, with checks that cost
nothing beyond their runs (:func:`grading_overhead`, :func:`bare_nothing`):

- *fixed*: the CPU of a ``grader check`` of an assignment whose one check makes no run: the
  ``grader`` command, the fork server of the sandboxes, the pytest process with the grader's
  plugin, before any student code runs;
- *runs' own*: for each run the grading makes, what a sandbox run of a function that returns at
  once adds to that grading, less what the same call costs run bare (a bare run's interpreter is
  already in the floor).

A virtual machine's speed drifts (here by a third within the hour), and an absolute CPU figure
moves with it: before and after the table, the same fixed loop in a fresh interpreter is timed
(:data:`YARDSTICK`, the median of 5), so tables taken at different moments can be compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.inside import wire
from grader.model.assignment import bundled_assignments, find_assignment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed import installed_environment  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def reference(assignment: str) -> Path:
    """The bundled reference solution of ``assignment``: ``reference/<its module file>``."""
    return ROOT / "reference" / find_assignment(assignment).module_file


BARE = """
import importlib, json, multiprocessing, sys
multiprocessing.set_start_method("spawn", force=True)
from grader_inside import wire
action = json.load(open(sys.argv[1], encoding="utf-8"))
module = importlib.import_module(sys.argv[2])
if action["kind"] == "call":
    getattr(module, action["func"])(*wire.decode(action["args"]), **wire.decode(action["kwargs"]))
elif action["kind"] == "driver":
    drivers = importlib.import_module("grader_drivers")
    getattr(drivers, action["func"])(module, *wire.decode(action["args"]), **wire.decode(action["kwargs"]))
"""


YARDSTICK = "total = 0\nfor i in range(3_000_000):\n    total += i * i"
"""A fixed amount of pure-Python work: its CPU says how fast the machine is at the moment."""


def yardstick(runs: int = 5) -> float:
    """Median CPU seconds of :data:`YARDSTICK` in a fresh interpreter."""
    times = []
    for _ in range(runs):
        cpu = children_cpu()
        subprocess.run([sys.executable, "-I", "-S", "-c", YARDSTICK], check=True)
        times.append(children_cpu() - cpu)
    return statistics.median(times)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


EMPTY_TEST = "def test_nothing():\n    pass\n"


def pytest_alone(runs: int) -> float:
    """Median CPU seconds of a bare pytest session that passes one empty test (no plugin autoloaded)."""
    env = {**installed_environment(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with tempfile.TemporaryDirectory(prefix="cpu-floor-pytest-") as tmp:
        (Path(tmp) / "test_nothing.py").write_text(EMPTY_TEST, encoding="utf-8")
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
                   f"--rootdir={tmp}", "test_nothing.py"]
        subprocess.run(command, cwd=tmp, env=env, capture_output=True, check=True)  # its bytecode, compiled once
        times = []
        for _ in range(max(runs, 3)):
            cpu = children_cpu()
            subprocess.run(command, cwd=tmp, env=env, capture_output=True, check=True)
            times.append(children_cpu() - cpu)
    return statistics.median(times)


EMPTY_ASSIGNMENT = """[assignment]
title = "Nothing"
summary = "One check, which makes no run, or runs of a function that returns at once."
module = "nothing.py"
start_method = "spawn"
timeout = 20
"""

RUNS_OF_NOTHING = 10
"""How many runs of ``nothing()`` the second empty assignment's check makes (the cost of one is a tenth)."""

EMPTY_CHECKS = {
    0: "import pytest\n\n\n@pytest.mark.points(1)\ndef test_nothing(submission):\n    submission.require_module()\n",
    RUNS_OF_NOTHING: "import pytest\n\n\n@pytest.mark.points(1)\ndef test_runs(submission):\n"
    f"    for _ in range({RUNS_OF_NOTHING}):\n        submission.call(\"nothing\")\n",
}
"""The check of an assignment of one check: making no run, or :data:`RUNS_OF_NOTHING` runs of ``nothing()``."""


def grading_overhead(runs: int) -> tuple[float, float]:
    """Median CPU seconds of a ``grader check`` whose one check makes no run, and what one run adds.

    The first is what every grading costs before any check runs the student's code: the
    ``grader`` command, the fork server, the pytest process with the grader's plugin, collecting
    one check. The second is what a sandbox run of a function that returns at once adds to it (the
    sandbox, its interpreter, the probes and the witness, with none of the student's work): a tenth
    of what :data:`RUNS_OF_NOTHING` runs add. The two gradings alternate, so that a drift of the
    machine's speed moves both.
    """
    times: dict[int, list[float]] = {made: [] for made in EMPTY_CHECKS}
    with tempfile.TemporaryDirectory(prefix="cpu-floor-empty-") as tmp:
        folder = Path(tmp)
        (folder / "nothing.py").write_text("def nothing():\n    return None\n", encoding="utf-8")
        env = {**installed_environment(), "GRADER_CHECK_TIMINGS": str(folder / "timings.json")}
        for made, checks in EMPTY_CHECKS.items():
            (folder / f"assignment-{made}").mkdir()
            (folder / f"assignment-{made}" / "assignment.toml").write_text(EMPTY_ASSIGNMENT, encoding="utf-8")
            (folder / f"assignment-{made}" / "test_nothing.py").write_text(checks, encoding="utf-8")
        for index in range(max(runs, 5) + 1):  # the first compiles the checks' bytecode: not counted
            for made in EMPTY_CHECKS:
                command = [sys.executable, "-m", "grader", "check", str(folder / f"assignment-{made}"),
                           str(folder / "nothing.py"), "-q"]
                cpu = children_cpu()
                done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
                if "all checks passed" not in done.stdout:
                    raise SystemExit(f"the empty assignment did not get full marks:\n{done.stdout[-2000:]}")
                if index:
                    times[made].append(children_cpu() - cpu)
    fixed = statistics.median(times[0])
    return fixed, (statistics.median(times[RUNS_OF_NOTHING]) - fixed) / RUNS_OF_NOTHING


def bare_nothing(runs: int) -> float:
    """Median CPU seconds of ``nothing()`` run bare (:data:`BARE`): what a bare run costs before the code's own work."""
    with tempfile.TemporaryDirectory(prefix="cpu-floor-bare-") as tmp:
        folder = Path(tmp)
        (folder / "nothing.py").write_text("def nothing():\n    return None\n", encoding="utf-8")
        shutil.copytree(ROOT / "grader" / "inside", folder / "grader_inside")
        action = {"kind": "call", "func": "nothing", "args": wire.encode([]), "kwargs": wire.encode({})}
        (folder / "action.json").write_text(json.dumps(action), encoding="utf-8")
        command = [sys.executable, "-c", BARE, str(folder / "action.json"), "nothing"]
        env = {**os.environ, "PYTHONPATH": str(folder)}
        times = []
        for index in range(max(runs, 5) + 1):  # the first compiles grader_inside's bytecode: not counted
            cpu = children_cpu()
            subprocess.run(command, cwd=folder, env=env, capture_output=True, check=True, timeout=120)
            if index:
                times.append(children_cpu() - cpu)
    return statistics.median(times)


def grade(assignment: str, log: Path, timings: Path) -> tuple[float, float]:
    """CPU and wall seconds of one ``grader check`` of the reference, its runs appended to ``log``.

    ``timings``: the file of the checks' timings (``GRADER_CHECK_TIMINGS``), kept for the next one."""
    env = {**installed_environment(), "GRADER_RUN_LOG": str(log), "GRADER_CHECK_TIMINGS": str(timings)}
    cpu, start = children_cpu(), time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", assignment, str(reference(assignment))],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    if "all checks passed" not in done.stdout:
        raise SystemExit(f"{assignment}: the reference did not get full marks:\n{done.stdout[-2000:]}")
    return children_cpu() - cpu, time.monotonic() - start


def bare(assignment: str, actions: list[dict], folder: Path) -> float:
    """Summed CPU seconds of every action run bare in a fresh interpreter."""
    module = reference(assignment).stem
    shutil.copy(reference(assignment), folder / f"{module}.py")
    drivers = ROOT / "assignments" / assignment / "drivers.py"
    if drivers.exists():
        shutil.copy(drivers, folder / "grader_drivers.py")
    if not (folder / "grader_inside").exists():
        shutil.copytree(ROOT / "grader" / "inside", folder / "grader_inside")
    total = 0.0
    for action in actions:
        (folder / "action.json").write_text(json.dumps(action), encoding="utf-8")
        cpu = children_cpu()
        done = subprocess.run([sys.executable, "-c", BARE, str(folder / "action.json"), module], cwd=folder,
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(folder)})
        total += children_cpu() - cpu
        if done.returncode != 0:  # some checks call the code so that it raises (a task that fails on purpose)
            print(f"  {assignment}: a bare run raised: {done.stderr.strip().splitlines()[-1:]}", flush=True)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", help="bundled assignments (default: all nine)")
    parser.add_argument("--runs", type=int, default=3, help="gradings and bare replays per assignment (default 3)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    args = parser.parse_args()
    known = [a.name for a in bundled_assignments()]
    names = args.assignments or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown assignment(s): {', '.join(unknown)}; known: {', '.join(known)}")
    rows = ["| assignment | runs per grading | first check: CPU | later checks: CPU | wall | floor CPU (bare runs) "
            "| later checks / floor | (pytest alone + floor) / floor | (fixed + runs' own + floor) / floor |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    print(f"load average before: {os.getloadavg()}", flush=True)
    speed_before = yardstick()
    print(f"yardstick before: {speed_before:.3f} s of CPU", flush=True)
    alone = pytest_alone(args.runs)
    print(f"a pytest session alone (one empty test): {alone:.3f} s of CPU", flush=True)
    fixed, one_run = grading_overhead(args.runs)
    own = one_run - bare_nothing(args.runs)
    print(f"a grading making no run: {fixed:.3f} s of CPU; a sandbox run of nothing() adds {one_run:.3f} s, "
          f"{own:.3f} s more than a bare run of it", flush=True)
    for assignment in names:
        with tempfile.TemporaryDirectory(prefix="cpu-floor-") as tmp:
            folder = Path(tmp)
            grading, walls, floors, count = [], [], [], 0
            first, _ = grade(assignment, folder / "runs-first.jsonl", folder / "timings.json")
            for index in range(args.runs):
                log = folder / f"runs-{index}.jsonl"
                cpu, wall = grade(assignment, log, folder / "timings.json")
                actions = [json.loads(line)["action"] for line in log.read_text().splitlines()]
                count = len(actions)
                grading.append(cpu)
                walls.append(wall)
                floors.append(bare(assignment, actions, folder))
            g, f = statistics.median(grading), statistics.median(floors)
            row = (f"| {assignment} | {count} | {first:.2f} s | {g:.2f} s | {statistics.median(walls):.2f} s | {f:.2f} s "
                   f"| {g / f:.1f}x | {(alone + f) / f:.1f}x | {(fixed + count * own + f) / f:.1f}x |")
            rows.append(row)
            print(row, flush=True)
    print(f"load average after: {os.getloadavg()}")
    speed_after = yardstick()
    print(f"yardstick after: {speed_after:.3f} s of CPU")
    rows.append(f"\nThe yardstick (a fixed loop, median of 5) took {speed_before:.3f} s of CPU before and "
                f"{speed_after:.3f} s after. A pytest session alone, passing one empty test, took {alone:.3f} s. "
                f"A `grader check` whose one check makes no run took {fixed:.3f} s; a sandbox run of a function "
                f"that returns at once adds {one_run:.3f} s to it, {own:.3f} s more than the same call run bare.")
    if args.markdown:
        Path(args.markdown).write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
