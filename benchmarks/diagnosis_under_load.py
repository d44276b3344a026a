"""The hang diagnoses do not move with the machine's load: the corpus graded quiet, then beside CPU burners.

    python benchmarks/diagnosis_under_load.py                 # quiet, then beside 3 burners
    python benchmarks/diagnosis_under_load.py --burners 2 4   # quiet, then beside 2, then beside 4

Each submission of ``tests/corpus/deadlocks`` (graded with its ``tests/assignments/hang_<module>``
assignment) and of ``tests/corpus/progress`` (graded with ``tests/assignments/progress``) is graded
once with nothing started beside it, then once for each count of burners given, with that many
processes spinning in ``while True: pass`` beside it. For every grading it keeps the verdict (the
check's status), whether the run was ended as a proven deadlock, the likely causes the diagnosis
names and the lines of the student's file it names; it prints one row per submission and load,
with the machine's load average, and exits 1 if any of these differs from the quiet grading.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.grading.grade import grade_submission  # noqa: E402
from grader.model.assignment import Assignment  # noqa: E402

TESTS = ROOT / "tests"
CAUSE = re.compile(r"^Likely cause \((?P<title>[^)]*)\)", re.MULTILINE)
PLACE = re.compile(r"\b\w+\.py, line \d+")


def _entries() -> list[tuple[Path, Path]]:
    """(submission, the assignment folder that grades it)."""
    found = [(p, TESTS / "assignments" / f"hang_{p.parent.name}") for p in sorted(TESTS.glob("corpus/deadlocks/*/*.py"))]
    found += [(p, TESTS / "assignments" / "progress") for p in sorted(TESTS.glob("corpus/progress/*.py"))]
    return found


def _verdict(path: Path, folder: Path) -> tuple[str, bool, tuple[str, ...], tuple[str, ...]]:
    """(status, ended as a proven deadlock, likely causes, lines named) of the one check of ``folder``."""
    result = grade_submission(Assignment.load(folder), path)
    if result.error is not None:
        return (f"error: {result.error}", False, (), ())
    [check] = result.checks
    head = check.diagnostics.split("\n== ", 1)[0]
    titles = tuple(m.group("title") for m in CAUSE.finditer(head))
    return (check.status.value, "deadlocked: after" in check.message, titles, tuple(sorted(set(PLACE.findall(head)))))


def _burn(parent: int) -> None:
    while os.getppid() == parent:  # ends once this benchmark is gone, however it ended
        pass


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _grade_all(burners: int) -> dict[str, tuple[str, bool, tuple[str, ...], tuple[str, ...]]]:
    procs = [multiprocessing.Process(target=_burn, args=(os.getpid(),), daemon=True) for _ in range(burners)]
    for proc in procs:
        proc.start()
    try:
        time.sleep(1.0 if burners else 0.0)
        print(f"-- {burners} burner(s); load average at start {_load()}", flush=True)
        verdicts = {}
        for path, folder in _entries():
            name = f"{path.parent.name}/{path.stem}"
            started = time.monotonic()
            verdicts[name] = _verdict(path, folder)
            status, proven, titles, _ = verdicts[name]
            print(f"   {name:45} {status:10} {'proven ' if proven else '       '}{', '.join(titles) or '-':30} "
                  f"{time.monotonic() - started:5.1f} s  load {_load()}", flush=True)
        return verdicts
    finally:
        for proc in procs:
            proc.kill()
            proc.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, nargs="+", default=[3], help="counts of CPU burners to grade beside")
    args = parser.parse_args(argv)
    quiet = _grade_all(0)
    changed = 0
    for burners in args.burners:
        loaded = _grade_all(burners)
        for name, verdict in quiet.items():
            if loaded[name] != verdict:
                changed += 1
                print(f"CHANGED with {burners} burner(s): {name}: {verdict} -> {loaded[name]}")
    print(f"{changed} verdict(s) or diagnos(es) changed under load")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
