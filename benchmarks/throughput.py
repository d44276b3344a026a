"""Throughput benchmark: `grader grade -j N` against a sequential loop of plain pytest runs.

    python benchmarks/throughput.py                                  # 24 students per assignment, -j 2
    python benchmarks/throughput.py --students 50 --jobs 2 --markdown table.md
    python benchmarks/throughput.py --assignments hello_processes --check-workers 1

For each bundled assignment with a corpus (tests/corpus/<assignment>/{correct,buggy}/*.py) it builds
a synthetic class in a temporary folder, one `<student>.py` per student, a fixed mix: about half
correct solutions, the rest buggy ones, one in twelve a submission that hangs (a buggy entry whose
header says `# expect-timeout`; none with ``--no-hanging``). Then it grades the class twice in the
same invocation:

- **baseline**: what an instructor would otherwise run, a sequential loop of
  `python -m pytest assignments/<a> --submission <student>.py` from the repository root, one
  pytest process per student (the same plugin; `--grader-results` only to read the verdicts back);
  with the pytest plugins an install of the grader brings, and no other (a development environment's
  test tools, hypothesis's plugin among them, are turned off with `-p no:NAME`: see benchmarks/installed.py);
- **grader**: `grader grade <a> <class> --out DIR -j N` (read back from `DIR/students/*.result.json`).

Both sides run with bytecode cached, as an install's is (``PYTHONDONTWRITEBYTECODE`` is dropped).

The loop runs in two halves (the first half of the class, then the grader, then the second half), so
that a machine whose speed drifts during the benchmark (a virtual one does, by 20-30 % within
minutes) slows both sides alike rather than only the one that ran later.

It reports wall time, CPU time (user + system of the processes each side started and reaped),
submissions per minute and the peak memory of the whole process tree (the sum of the resident set
sizes of this process and all its descendants, sampled every 200 ms; shared pages count once per
process, so this over-estimates), checks that both gave every student the
same verdict (full marks or not, and the checks its corpus header names lost), counts apart the
students whose other checks varied between the two gradings (buggy code that races: it deadlocks or
overfills on some runs only, whoever grades it), and times `grader check` of the reference solution of
each assignment. Exit status 1 if any verdict differs.

``--beside N`` runs N other CPU-bound processes (pure Python loops, at the same priority) for the
whole benchmark, both gradings included: the machine is busy with other work of the grading's size
(``--beside 2`` with ``-j 2``), as on a shared server. Their memory is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
sys.path.insert(0, str(ROOT / "tests"))

from corpus_expectations import expectation  # noqa: E402
from cpu_floor import children_cpu, reference  # noqa: E402
from installed import installed_environment, plain_pytest_options  # noqa: E402

from grader.grading.batch import check_worker_plan  # noqa: E402

Verdict = tuple[tuple[str, str], ...]


@dataclass
class Measure:
    wall: float
    peak_rss: int
    verdicts: dict[str, Verdict]
    cpu: float
    """User + system seconds of the processes it started (``getrusage`` of reaped children)."""


OTHER_WORK: set[int] = set()
"""The pids of ``--beside``'s processes: not part of what is measured."""


class PeakMemory:
    """Samples the summed RSS of this process and all its descendants (but ``--beside``'s) every 200 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        try:
            procs = [me, *me.children(recursive=True)]
        except psutil.Error:
            procs = [me]
        total = 0
        for proc in procs:
            if proc.pid in OTHER_WORK:
                continue
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.2)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class OtherWork:
    """``count`` processes that use a whole CPU each (a busy Python loop) until the block ends."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> OtherWork:
        for _ in range(self.count):
            proc = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
            self.procs.append(proc)
            OTHER_WORK.add(proc.pid)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()
            OTHER_WORK.discard(proc.pid)


def class_mix(assignment: str, students: int, *, with_hanging: bool = True) -> list[Path]:
    """The corpus entry each student hands in: ~1/2 correct, 1/12 hanging (none without ``with_hanging``), the rest
    buggy (cycling)."""
    folder = CORPUS / assignment
    correct = sorted(folder.glob("correct/*.py"))
    buggy = sorted(folder.glob("buggy/*.py"))
    hanging = [p for p in buggy if expectation(p).timing_out] if with_hanging else []
    failing = [p for p in buggy if not expectation(p).timing_out]
    if not correct or not (failing or hanging):
        raise SystemExit(f"{assignment}: the corpus needs correct and buggy entries in {folder}")
    picks: list[Path] = []
    counters = {"correct": 0, "failing": 0, "hanging": 0}
    for i in range(students):
        slot = i % 12
        kind = "hanging" if slot == 11 and hanging else "correct" if slot % 2 == 0 or not failing else "failing"
        pool = {"correct": correct, "failing": failing, "hanging": hanging}[kind]
        picks.append(pool[counters[kind] % len(pool)])
        counters[kind] += 1
    return picks


def build_class(mix: list[Path], folder: Path) -> dict[str, Path]:
    """One ``<student>.py`` in ``folder`` per entry of ``mix``: student name -> its file."""
    folder.mkdir(parents=True)
    made = {}
    for i, source in enumerate(mix):
        name = f"s{i:03d}_{source.parent.name}_{source.stem}"
        path = folder / f"{name}.py"
        path.write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        made[name] = path
    return made


def outcome(verdict: Verdict | None, source: Path) -> tuple[bool, frozenset[str]]:
    """What a grading must agree on: full marks or not, and which of the checks the entry's header names lost points.

    A buggy entry whose code races (it deadlocks on some runs only, or overfills its buffer on some)
    can lose other checks on one run and pass them on the next, whoever grades it: those checks are
    counted apart ("other checks varied"), as in benchmarks/stress.py.
    """
    statuses = dict(verdict or ())
    expected = expectation(source)
    named = set(expected.failing) | set(expected.timing_out)
    full = bool(statuses) and all(status == "passed" for status in statuses.values())
    return full, frozenset(check for check in named if statuses.get(check, "missing") != "passed")


def verdict_of(data: dict) -> Verdict:
    if data.get("error"):
        return (("error", str(data["error"]).splitlines()[0]),)
    return tuple((c["id"], c["status"]) for c in data.get("checks", []))


def run_baseline(assignment: str, students: dict[str, Path], out: Path) -> Measure:
    out.mkdir(parents=True)
    verdicts = {}
    started, cpu = time.monotonic(), children_cpu()
    with PeakMemory() as memory:
        for name, path in students.items():
            target = out / f"{name}.json"
            subprocess.run(
                [sys.executable, "-m", "pytest", f"assignments/{assignment}", "--submission", str(path),
                 f"--grader-results={target}", "-q", *plain_pytest_options()],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
                env=installed_environment(),
            )
            verdicts[name] = verdict_of(json.loads(target.read_text())) if target.is_file() else (("error", "no result"),)
    return Measure(time.monotonic() - started, memory.peak, verdicts, children_cpu() - cpu)


def joined(first: Measure, second: Measure) -> Measure:
    """Two parts of one loop measured apart: their times and verdicts added up, the higher peak."""
    return Measure(first.wall + second.wall, max(first.peak_rss, second.peak_rss), {**first.verdicts, **second.verdicts},
                   first.cpu + second.cpu)


def run_grader(assignment: str, folder: Path, out: Path, jobs: int, check_workers: int | None) -> Measure:
    command = [sys.executable, "-m", "grader", "grade", assignment, str(folder), "--out", str(out), "-j", str(jobs)]
    if check_workers:
        command += ["--check-workers", str(check_workers)]
    started, cpu = time.monotonic(), children_cpu()
    with PeakMemory() as memory:
        subprocess.run(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, env=installed_environment())
    wall, cpu = time.monotonic() - started, children_cpu() - cpu
    verdicts = {}
    for path in sorted((out / "students").glob("*.result.json")):
        data = json.loads(path.read_text())
        verdicts[data["student"]] = verdict_of(data)
    return Measure(wall, memory.peak, verdicts, cpu)


def time_check(assignment: str, check_workers: int | None) -> float:
    solution = reference(assignment)
    command = [sys.executable, "-m", "grader", "check", assignment, str(solution)]
    if check_workers:
        command += ["--check-workers", str(check_workers)]
    started = time.monotonic()
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, cwd=ROOT,
                          env=installed_environment())
    if done.returncode != 0:
        raise SystemExit(f"grader check of {solution} did not give full marks (exit {done.returncode}):\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started


def workers_label(k: int, jobs: int) -> str:
    """How many checks of a submission ran at once: given, or the grader's default (more for the tail)."""
    if k:
        return f"`--check-workers {k}`"
    usual, tail = check_worker_plan(jobs)
    return f"default: {usual}, the tail: {tail} where its checks take long" if tail != usual else f"default: {usual}"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} CPUs ({model}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def bundled() -> list[str]:
    return sorted(
        p.name for p in (ROOT / "assignments").iterdir()
        if (p / "assignment.toml").is_file() and (CORPUS / p.name / "correct").is_dir()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", nargs="*", help="default: every bundled assignment with a corpus")
    parser.add_argument("--students", type=int, default=24, help="students per assignment (default 24)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="grader grade -j (default 2)")
    parser.add_argument(
        "--check-workers", type=int, nargs="+", default=[0], metavar="K",
        help="grade the class with each of these grader grade --check-workers values (0: the grader's default)",
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the tables as Markdown to PATH")
    parser.add_argument("--no-hanging", action="store_true", help="no student hangs (the buggy ones all end)")
    parser.add_argument(
        "--beside", type=int, default=0, metavar="N",
        help="run N CPU-bound processes of other work beside the whole benchmark (default 0: none)",
    )
    args = parser.parse_args(argv)
    if args.beside < 0:
        parser.error("--beside must be 0 or more")
    with OtherWork(args.beside):
        return measure(args, argv, names=args.assignments or bundled())


def measure(args: argparse.Namespace, argv: list[str] | None, names: list[str]) -> int:
    rows = []
    mismatches = 0
    load_before = os.getloadavg()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        for name in names:
            folder = Path(tmp) / name / "class"
            mix = class_mix(name, args.students, with_hanging=not args.no_hanging)
            students = build_class(mix, folder)
            sources = dict(zip(students, mix))
            order = list(students)
            halves = ({s: students[s] for s in order[: len(order) // 2]}, {s: students[s] for s in order[len(order) // 2 :]})
            print(f"{name}: {len(students)} students, baseline (sequential pytest loop), first half...", file=sys.stderr)
            first = run_baseline(name, halves[0], Path(tmp) / name / "baseline-1")
            graded = {}
            for k in args.check_workers:
                print(f"{name}: grader grade -j {args.jobs} --check-workers {k or 'default'}...", file=sys.stderr)
                graded[k] = run_grader(name, folder, Path(tmp) / name / f"grader-{k}", args.jobs, k or None)
            print(f"{name}: baseline, second half...", file=sys.stderr)
            base = joined(first, run_baseline(name, halves[1], Path(tmp) / name / "baseline-2"))
            print(f"{name}: baseline {base.wall:.1f}s", file=sys.stderr)
            hanging = sum(1 for p in mix if expectation(p).timing_out)
            correct = sum(1 for s in students if s.split("_", 2)[1] == "correct")
            for k, ours in graded.items():
                varied = sorted(s for s in students if base.verdicts.get(s) != ours.verdicts.get(s))
                differ = [s for s in varied
                          if outcome(base.verdicts.get(s), sources[s]) != outcome(ours.verdicts.get(s), sources[s])]
                mismatches += len(differ)
                for student in varied:
                    what = "VERDICTS DIFFER" if student in differ else "other checks varied (racy code)"
                    print(f"{what} for {name}/{student}:\n  baseline {base.verdicts.get(student)}\n"
                          f"  grader   {ours.verdicts.get(student)}", file=sys.stderr)
                rows.append((name, len(students), correct, hanging, workers_label(k, args.jobs), base, ours, len(differ),
                             len(varied) - len(differ)))
                print(f"{name}: grader {ours.wall:.1f}s, speed-up {base.wall / ours.wall:.2f}x, "
                      f"{len(differ)} verdicts differ, other checks varied for {len(varied) - len(differ)}", file=sys.stderr)
        checks = {name: (time_check(name, None), time_check(name, 1)) for name in names}
    load_after = os.getloadavg()
    total = time.monotonic() - started
    lines = [
        f"Machine: {machine()}. Load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after; "
        f"benchmark took {total:.0f} s"
        + (f", beside {args.beside} CPU-bound process(es) of other work." if args.beside else "."),
        "",
        "`python benchmarks/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        "",
        "| assignment | students (correct, hanging) | baseline wall | baseline CPU | baseline subm/min "
        f"| baseline peak RSS | grader grade -j {args.jobs}, check workers | wall | CPU | subm/min | peak RSS | speed-up "
        "| verdicts differing | other checks varied |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, count, correct, hanging, k, base, ours, differ, other in rows:
        lines.append(
            f"| {name} | {count} ({correct}, {hanging}) | {base.wall:.1f} s | {base.cpu:.0f} s "
            f"| {count / base.wall * 60:.1f} | {base.peak_rss / 2**20:.0f} MiB | {k} | {ours.wall:.1f} s | {ours.cpu:.0f} s "
            f"| {count / ours.wall * 60:.1f} "
            f"| {ours.peak_rss / 2**20:.0f} MiB | {base.wall / ours.wall:.2f}x | {differ} of {count} | {other} |"
        )
    lines += [
        "",
        "| assignment | `grader check` of the reference solution (default check workers) | with `--check-workers 1` |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {default:.1f} s | {one:.1f} s |" for name, (default, one) in checks.items()]
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n", encoding="utf-8")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
