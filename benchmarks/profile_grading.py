"""Where the time of grading one submission goes: interpreter start-up, imports, sandboxes, spawn children.

    python benchmarks/profile_grading.py [ASSIGNMENT]      # default hello_processes, run from the repository root

Prints a Markdown table of CPU time (user + system of this process and its reaped descendants, from
getrusage: steady on a loaded machine) and wall time, medians of 5 runs, then the top of a cProfile of
the pytest process that grades the reference solution with one check worker. The sandbox rows call
``main(count=..., delay=0)`` and ``hello(n=0, delay=0)``, the functions of hello_processes.
"""

from __future__ import annotations

import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def cpu() -> float:
    kids, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return kids.ru_utime + kids.ru_stime + me.ru_utime + me.ru_stime


def measure(label: str, fn: Callable[[], object], n: int = 5) -> None:
    cpus, walls = [], []
    for _ in range(n):
        c, t = cpu(), time.monotonic()
        fn()
        cpus.append(cpu() - c)
        walls.append(time.monotonic() - t)
    print(f"| {label} | {statistics.median(cpus) * 1000:.0f} ms | {statistics.median(walls) * 1000:.0f} ms |", flush=True)


def run(*command: str, cwd: Path = ROOT) -> None:
    subprocess.run(list(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd)


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "hello_processes"
    from grader.checks import Submission
    from grader.grading.grade import pytest_command
    from grader.model.assignment import find_assignment

    assignment = find_assignment(name)
    reference = ROOT / "reference" / assignment.module_file
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs\n")
    print("| what | CPU (median) | wall (median) |\n| --- | --- | --- |")
    measure("interpreter start-up: `python -c pass`", lambda: run(PY, "-c", "pass"))
    measure("interpreter start-up without site: `python -I -S -c pass`", lambda: run(PY, "-I", "-S", "-c", "pass"))
    measure("imports of the trusted side (pytest, xdist, pytest-timeout, grader.plugin)",
            lambda: run(PY, "-c", "import pytest, xdist.plugin, pytest_timeout, grader.plugin, grader.checks"))
    with tempfile.TemporaryDirectory() as tmp:
        support = Path(tmp)
        shutil.copytree(ROOT / "grader" / "inside", support / "grader_inside")

        def fresh() -> None:
            shutil.rmtree(support / "grader_inside" / "__pycache__", ignore_errors=True)
            run(PY, "-B", "-s", "-c", "from grader_inside import probes, runner", cwd=support)

        measure("sandbox-side imports compiled from source (as in a sandbox)", fresh)
        run(PY, "-c", "from grader_inside import probes, runner", cwd=support)
        measure("sandbox-side imports from cached bytecode",
                lambda: run(PY, "-s", "-c", "from grader_inside import probes, runner", cwd=support))
    if name == "hello_processes":
        sub = Submission(assignment, reference)
        measure("one sandbox, no child: `hello(0, 0)`", lambda: sub.call("hello", n=0, delay=0.0, timeout=60))
        measure("one sandbox, 1 spawn child", lambda: sub.call("main", count=1, delay=0.0, timeout=60))
        measure("one sandbox, 10 spawn children", lambda: sub.call("main", count=10, delay=0.0, timeout=60))
    for k in (1, 2):
        measure(f"`grader check` of the reference, --check-workers {k}",
                lambda k=k: run(PY, "-m", "grader", "check", name, str(reference), "--check-workers", str(k)), n=3)
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "pytest.prof"
        command = pytest_command(assignment, reference, Path(tmp) / "results.json")
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONDONTWRITEBYTECODE="1")
        subprocess.run([command[0], "-m", "cProfile", "-o", str(profile), *command[1:]], env=env, cwd=tmp,
                       stdout=subprocess.DEVNULL, check=False)
        print("\ncProfile of the pytest process (one check worker), by own time:\n")
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(10)
        pstats.Stats(str(profile)).sort_stats("cumulative").print_stats("grader/(sandbox|submission)", 10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
