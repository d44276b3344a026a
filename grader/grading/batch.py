"""Batch grading: find every student's submission in what an instructor hands in, grade them in parallel.

:func:`collect_submissions` accepts

- a folder with one entry per student: a folder, a single ``.py`` file or
  notebook named after the student, or a ``.zip`` the student handed in
  (extracted safely); which file of a student's folder is graded is decided by
  :func:`grader.model.locate.prepare_submission` when each one is graded;
- a ``.zip`` of such a folder (extracted safely; folders that only wrap one
  folder are stepped through);
- Canvas's "Download submissions" zip (flat ``name_userid_submissionid_file``
  names) and Gradescope's "Download submissions" export (``submission_metadata.yml``
  plus a folder per submission), whose student identities are read from them.

:func:`grade_all` runs :func:`grader.grading.grade.grade_submission` for each of
them on a pool of ``jobs`` threads. Each call already grades in its own pytest
process with its own time budget, so threads only wait: one submission's crash
or hang is its own result and never changes another's. :func:`write_class_reports`
writes the class summary, the per-student reports and the gradebook.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from grader.exporters.canvas import CanvasColumn, has_canvas_ids, write_canvas_csv
from grader.exporters.csv import write_gradebook
from grader.exporters.files import write_atomic
from grader.exporters.gradescope import write_gradescope
from grader.exporters.html import write_class_html, write_student_html
from grader.grading.activity import Activity, MachineIdle, Typical, measurable, process_table
from grader.grading.archives import (
    GRADESCOPE_METADATA,
    ArchiveError,
    is_canvas_export,
    read_canvas_export,
    read_gradescope_export,
    safe_extract,
    single_folder,
)
from grader.grading.grade import StopEarly, available_cpus, default_check_workers, grade_submission, warm_grading
from grader.grading.order import start_order
from grader.grading.timings import ClassTimings
from grader.grading.warm import WarmPytest
from grader.model.assignment import Assignment
from grader.model.results import SubmissionResult

__all__ = [
    "BatchError",
    "Progress",
    "check_worker_plan",
    "StudentSubmission",
    "collect_submissions",
    "examples_dir",
    "grade_all",
    "student_slugs",
    "write_class_reports",
]

IGNORED = {"__MACOSX", "__pycache__", "Thumbs.db", "desktop.ini"}


class BatchError(ValueError):
    """The submissions could not be read at all (the batch cannot run)."""


@dataclass(frozen=True)
class StudentSubmission:
    """One student's work: a name, the path to grade, and what the LMS said about it."""

    student: str
    path: Path
    label: str
    metadata: dict[str, Any] = field(default_factory=dict)
    problem: str = ""
    """Why this submission cannot be graded although it is there (an unreadable LMS metadata entry)."""
    stop_early: StopEarly | None = None
    """Only whether it loses points is asked: stop at the first check that does (``grader mutants``), one check at a time."""


def _visible(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if not p.name.startswith(".") and p.name not in IGNORED),
        key=lambda p: p.name.lower(),
    )


def collect_submissions(
    source: Path, workdir: Path, *, module_file: str | None = None, exclude: Sequence[Path] = ()
) -> tuple[list[StudentSubmission], str]:
    """Every submission in ``source`` (a folder or a zip), and which kind of collection it was.

    ``workdir`` is an empty folder that lives as long as the grading does:
    archives are extracted there. ``module_file`` (the file students submit)
    tells a class of one student in a folder from a folder wrapping a class.
    Folders in ``exclude`` (the report folder, if it is inside ``source``) are
    skipped. Raises :class:`BatchError` when ``source`` is unreadable, refused, or holds
    no submission.
    """
    try:
        return _collect(Path(source), Path(workdir), module_file, {Path(p).resolve() for p in exclude})
    except OSError as exc:
        raise BatchError(f"cannot read the submissions in {source}: {exc}") from None


def _collect(source: Path, workdir: Path, module_file: str | None, exclude: set[Path]) -> tuple[list[StudentSubmission], str]:
    root = _class_root(source, workdir, module_file)
    shown = source.name

    def label(path: Path) -> str:
        try:
            return f"{shown}/{path.relative_to(root).as_posix()}"
        except ValueError:
            return f"{shown}/{path.name}"

    if (root / GRADESCOPE_METADATA).is_file():
        try:
            found = read_gradescope_export(root)
        except ArchiveError as exc:
            raise BatchError(str(exc)) from None
        subs = [StudentSubmission(s.student, s.path, label(s.path), s.metadata, s.problem) for s in found]
        kind = "Gradescope export"
    elif is_canvas_export(root):
        found = read_canvas_export(root, workdir / "canvas")
        subs = [
            StudentSubmission(s.student, s.path, f"{shown} (Canvas user {s.metadata['canvas_id']})", s.metadata) for s in found
        ]
        kind = "Canvas export"
    else:
        subs = _folder_entries(root, workdir, exclude, label)
        kind = "folder"
    if not subs:
        raise BatchError(
            f"no submissions found in {source}: expected one folder or .py file per student, "
            "a zip of those, or a Canvas or Gradescope export"
        )
    return _unique_names(subs), kind


def _class_root(source: Path, workdir: Path, module_file: str | None) -> Path:
    """The folder that holds the class: ``source`` itself, the folder it wraps, or the extracted zip."""
    if not source.exists():
        raise BatchError(f"submissions not found: {source}")
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise BatchError(f"SUBMISSIONS is a folder or a .zip archive, not {source.name}")
        try:
            return single_folder(safe_extract(source, workdir / "archive"), stop_at=module_file)
        except ArchiveError as exc:
            raise BatchError(str(exc)) from None
    if source.is_dir():
        return single_folder(source, stop_at=module_file)
    raise BatchError(f"SUBMISSIONS is a folder or a .zip archive: {source}")


def _folder_entries(
    root: Path, workdir: Path, exclude: set[Path], label: Callable[[Path], str]
) -> list[StudentSubmission]:
    """One submission per folder, ``.py`` file or ``.zip`` of a plain class folder."""
    subs = []
    for entry in _visible(root):
        if entry.is_symlink() or entry.resolve() in exclude:
            continue
        if entry.is_dir():
            subs.append(StudentSubmission(entry.name, entry, label(entry)))
        elif entry.suffix.lower() in (".py", ".ipynb"):
            subs.append(StudentSubmission(entry.stem, entry, label(entry)))
        elif entry.suffix.lower() == ".zip":
            target = workdir / "students" / entry.stem
            metadata: dict[str, Any] = {}
            try:
                safe_extract(entry, target)
                path = single_folder(target)
            except ArchiveError as exc:
                metadata["archive_refused"] = str(exc)
                path = target
            subs.append(StudentSubmission(entry.stem, path, label(entry), metadata))
    return subs


def _unique_names(subs: list[StudentSubmission]) -> list[StudentSubmission]:
    counts: dict[str, int] = {}
    for s in subs:
        counts[s.student] = counts.get(s.student, 0) + 1
    result, used = [], set()
    for s in subs:
        name = s.student
        if counts[name] > 1:
            ident = s.metadata.get("canvas_id") or s.metadata.get("gradescope_submission") or ""
            name = f"{name} ({ident})" if ident else name
            n = 2
            base = name
            while name in used:
                name, n = f"{base} ({n})", n + 1
        used.add(name)
        result.append(StudentSubmission(name, s.path, s.label, s.metadata, s.problem))
    return result


def student_slugs(names: Sequence[str]) -> dict[str, str]:
    """A distinct, file-name-safe slug for each student name."""
    slugs: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_").lower()[:60] or "student"
        slug, n = base, 2
        while slug in used:
            slug, n = f"{base}-{n}", n + 1
        used.add(slug)
        slugs[name] = slug
    return slugs


class Progress:
    """A progress bar on a terminal, one plain line per graded submission otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()

    def update(self, result: SubmissionResult) -> None:
        self.done += 1
        verdict = f"{result.score:g}/{result.max_score:g}" if result.graded else "NOT GRADED"
        if result.no_submission is not None:
            verdict = "NO SUBMISSION FOUND"
        if self.tty:
            width = 30
            filled = int(width * self.done / max(1, self.total))
            elapsed = time.monotonic() - self.started
            bar = "#" * filled + "." * (width - filled)
            line = f"\r[{bar}] {self.done}/{self.total}  {elapsed:5.0f}s  {result.student[:30]}: {verdict}"
            self.stream.write(line.ljust(100)[:100])
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {result.student}: {verdict} ({result.duration:.1f}s)\n")
        self.stream.flush()


def _grade_one(
    assignment: Assignment,
    sub: StudentSubmission,
    check_workers: int,
    warm: WarmPytest | None,
    activity: Activity | None = None,
    unsafe: bool = False,
) -> SubmissionResult:
    if sub.problem:
        result = SubmissionResult(assignment=assignment.name, student=sub.student, submission=sub.label, error=sub.problem)
        result.metadata.update(sub.metadata)
        return result
    try:
        result = grade_submission(
            assignment,
            sub.path,
            student=sub.student,
            check_workers=check_workers,
            warm=warm,
            on_start=activity.attach if activity is not None else None,
            unsafe=unsafe,
            stop_early=sub.stop_early,
        )
    except Exception as exc:  # the grader's own failure for this one submission stays its own result
        result = SubmissionResult(
            assignment=assignment.name,
            student=sub.student,
            submission=str(sub.path),
            error=f"the grader failed on this submission: {type(exc).__name__}: {exc}",
        )
    result.submission = sub.label
    result.metadata.update(sub.metadata)
    return result


WAITING_FACTOR = 4
"""At most ``WAITING_FACTOR * jobs`` submissions at once, counting those that wait."""
TICK = 0.5
"""Seconds between two looks at which gradings use the CPUs."""
HEADROOM = 0.1
"""One more submission starts while the running ones use at most ``jobs - HEADROOM`` CPUs (and that much is idle)."""
IDLE_EVERY = 1.0
"""Seconds over which the machine's idle CPUs are measured for :data:`HEADROOM`: the CPUs a burst of gradings kept
busy until they ended must not hold the next ones back for longer."""
REPLACE_AFTER = 0.1
"""Seconds after a grading ended at which the scheduler looks whether the CPUs it used are idle (:class:`Places`)."""
SPARE = 0.5
"""CPUs the running gradings together leave unused (and the machine idle), measured, that start one more submission."""
SPARE_EVERY = 1.0
"""Seconds over which :data:`SPARE` is measured. It starts at most one submission a look (:data:`TICK`): the next
look sees what that one used since it started (:meth:`grader.grading.activity.Activity.rate`)."""
TAIL_WORKERS_PER_CPU = 2
"""Check workers per CPU for the submissions of a batch's tail (:func:`in_the_tail`) when ``check_workers`` is not
given.

Once no submission is left to start, CPUs fall idle one after the other, and a
submission that hangs or waits (its checks waiting for their time limits, or for its
own sleeps, one after the other) would be graded alone at the end: its checks run side
by side instead, where the assignment's checks take long (:class:`grader.grading.timings.ClassTimings`)."""
TAIL = 2
"""A submission that starts with at most ``TAIL * jobs`` submissions left to finish, itself included, is in the tail."""


def in_the_tail(waiting: int, running: int, jobs: int) -> bool:
    """Whether a submission starting now, with ``waiting`` more to start and ``running`` under way, is in the tail.

    It is when it is one of the last ``jobs`` to start, or when at most :data:`TAIL` times ``jobs``
    submissions are left to finish, itself included: either way the CPUs are likely to fall idle
    before it ends. Counting those left to finish matters when gradings that wait were started
    beside the others: a submission that starts third from last can still run alone long after
    the last ones ended.
    """
    return waiting < jobs or waiting + running + 1 <= TAIL * jobs


def check_worker_plan(jobs: int, check_workers: int | None = None) -> tuple[int, int]:
    """Check workers per submission in a batch of ``jobs`` at a time: (most submissions, the tail's).

    ``check_workers`` given: that for all. Otherwise
    :func:`grader.grading.grade.default_check_workers`, and
    :data:`TAIL_WORKERS_PER_CPU` per CPU for the tail (:func:`in_the_tail`).
    """
    if check_workers:
        return check_workers, check_workers
    usual = default_check_workers(jobs)
    return usual, max(usual, TAIL_WORKERS_PER_CPU * available_cpus())


class Places:
    """The places of gradings that ended, taken again by as many new ones once the CPUs they used are seen idle.

    Gradings started together end together, and the idle time of the second before
    (:data:`IDLE_EVERY`) says nothing yet of the CPUs they just left: :data:`REPLACE_AFTER`
    seconds after the first of them ended, the idle time since then does. If a tenth of a CPU
    was idle, as many start as ended; if not (other work took the CPUs), their places are given up.
    """

    def __init__(self, machine: MachineIdle) -> None:
        self.machine = machine
        self.count = 0
        self.since = 0.0

    def ended(self, count: int, now: float) -> None:
        if count and not self.count:
            self.since = now
            self.machine.sample(now)
        self.count += count

    def took(self) -> None:
        """A submission started below ``-j`` running: in the place of one that ended, if one did (not yet judged)."""
        self.count = max(0, self.count - 1)

    def replacements(self, now: float) -> int:
        """How many submissions start now in the places of those that ended (the places are then used up)."""
        if not self.count or now - self.since < REPLACE_AFTER * 0.9:
            return 0
        count, self.count = self.count, 0
        return count if self.machine.idle_since(self.since) >= HEADROOM else 0

    def timeout(self, now: float) -> float:
        """Seconds until the next look: :data:`TICK`, or sooner to judge the places of gradings that ended."""
        return TICK if not self.count else max(0.0, min(TICK, self.since + REPLACE_AFTER - now))


def _sample(activities: list[Activity], machine: MachineIdle, now: float) -> None:
    """One look at the CPU time of each running grading's process tree, and at the machine's idle time."""
    table = process_table([activity.pid for activity in activities if activity.pid is not None])
    for activity in activities:
        activity.sample(table, now)
    machine.sample(now)


def _spare(running: Iterable[tuple[int, Activity]], jobs: int, machine: MachineIdle, now: float) -> bool:
    """Whether the running gradings, young ones included, used at most ``jobs - SPARE`` CPUs lately, and that much was idle.

    Short gradings spend most of their life in :data:`grader.grading.activity.WARMUP`, where their
    share counts as a whole CPU; what they really used says whether one more fits.
    """
    used = sum(activity.rate(now, SPARE_EVERY) for _, activity in running)
    return used <= jobs - SPARE and machine.idle_cpus(SPARE_EVERY) >= SPARE


def grade_all(
    assignment: Assignment,
    submissions: Sequence[StudentSubmission],
    *,
    jobs: int | None = None,
    check_workers: int | None = None,
    on_result: Callable[[SubmissionResult], None] | None = None,
    warm_batches: bool = True,
    overlap_waits: bool = True,
    unsafe: bool = False,
) -> list[SubmissionResult]:
    """Grade every submission, ``jobs`` at a time; results in the order of ``submissions``.

    Those whose code calls a ``sleep`` start early (:func:`grader.grading.order.start_order`): they
    take longest, and started last they would run on alone after the others ended.

    Each submission's checks run ``check_workers`` at a time (default:
    :func:`grader.grading.grade.default_check_workers` for ``jobs``). With more than
    one submission, each one's pytest process is a fork of one warm process
    (:mod:`grader.grading.warm`) where the platform allows it. Without
    ``check_workers``, the tail (:func:`in_the_tail`: the last ``jobs`` to start, and those that
    start with at most ``TAIL * jobs`` left to finish) gets :data:`TAIL_WORKERS_PER_CPU` check workers per CPU,
    unless the gradings of the same assignment that ended show its checks are quick
    (:class:`grader.grading.timings.ClassTimings`). A
    submission with ``stop_early`` always has one check worker, so that it stops at the
    first check that loses points.

    ``jobs`` counts the CPUs the submissions use: with ``overlap_waits``,
    the CPU shares the running gradings used over the last seconds are added
    up (a deadlock running into a check's time limit, a solution that sleeps,
    use little; one too young to be measured counts as what the last ones that ended used,
    :class:`grader.grading.activity.Typical`), and while they come to at most ``jobs - HEADROOM`` CPUs and the
    machine has that much idle, the next submission starts, up to
    ``WAITING_FACTOR * jobs`` at once (see :mod:`grader.grading.activity`; Linux only).
    Grades do not depend on it: every check still has its own sandboxes and
    time limits. ``unsafe``: ``--unsafe-no-sandbox`` (see :func:`grader.grading.grade.pytest_command`).
    """
    return grade_many(
        [(assignment, sub) for sub in submissions], jobs=jobs, check_workers=check_workers, on_result=on_result,
        warm_batches=warm_batches, overlap_waits=overlap_waits, unsafe=unsafe,
    )


def grade_many(
    work: Sequence[tuple[Assignment, StudentSubmission]],
    *,
    jobs: int | None = None,
    check_workers: int | None = None,
    on_result: Callable[[SubmissionResult], None] | None = None,
    warm_batches: bool = True,
    overlap_waits: bool = True,
    unsafe: bool = False,
) -> list[SubmissionResult]:
    """:func:`grade_all` for submissions of several assignments, in one queue; results in the order of ``work``.

    One warm process and one queue for all, so that no CPU waits for the end of
    one assignment's class before the next starts, and only the tail of the whole
    queue (:func:`in_the_tail`) gets the tail's check workers (``grader demo`` grades its
    sample classes this way).
    """
    jobs = max(1, jobs or os.cpu_count() or 1)
    plan = check_worker_plan(jobs, check_workers)
    warm = warm_grading(plan[1]) if warm_batches and len(work) > 1 else None
    cap = jobs * WAITING_FACTOR if overlap_waits and measurable() else jobs
    try:
        return _grade_pool(work, jobs, cap, plan, warm, on_result, unsafe)
    finally:
        if warm is not None:
            warm.close()


def _grade_pool(
    work: Sequence[tuple[Assignment, StudentSubmission]],
    jobs: int,
    cap: int,
    workers: tuple[int, int],
    warm: WarmPytest | None,
    on_result: Callable[[SubmissionResult], None] | None,
    unsafe: bool = False,
) -> list[SubmissionResult]:
    results: dict[int, SubmissionResult] = {}
    waiting = deque((i, work[i]) for i in start_order([None if sub.problem else sub.path for _, sub in work], jobs))
    running: dict[Future[SubmissionResult], tuple[int, Activity]] = {}
    machine = MachineIdle()
    typical = Typical()
    spare_started = -TICK
    places = Places(machine)
    timings = ClassTimings()
    pool = ThreadPoolExecutor(max_workers=cap, thread_name_prefix="grade")
    try:
        while waiting or running:
            now = time.monotonic()
            if cap > jobs:
                _sample([activity for _, activity in running.values()], machine, now)
            young = typical.rate() if cap > jobs else 1.0
            load = sum(activity.share(now, young) for _, activity in running.values())  # CPUs in use by the gradings
            # one spare start a look: looks come a TICK apart, or sooner when a grading ends
            spare = cap > jobs and now - spare_started >= TICK * 0.9
            replace = places.replacements(now) if cap > jobs else 0
            while waiting and len(running) < cap:
                if len(running) < jobs:  # below -j only because gradings ended: in the place of one
                    places.took()
                    replace = max(0, replace - 1)
                elif replace:  # in the place of one that ended, its CPUs seen idle since
                    replace -= 1
                elif not (load <= jobs - HEADROOM and machine.idle_cpus(IDLE_EVERY) >= HEADROOM):
                    if not (spare and _spare(running.values(), jobs, machine, now)):
                        break
                    spare, spare_started = False, now  # one at a time: the next look sees what it uses
                index, (assignment, sub) = waiting.popleft()
                activity = Activity()
                check_workers = _workers_for(sub, assignment, workers, in_the_tail(len(waiting), len(running), jobs), timings)
                running[pool.submit(_grade_one, assignment, sub, check_workers, warm, activity, unsafe)] = (index, activity)
                load += young  # a grading starting up counts as what the ones before it used
            done, _ = wait(running, timeout=places.timeout(time.monotonic()) if cap > jobs else None,
                           return_when=FIRST_COMPLETED)
            if cap > jobs:
                places.ended(len(done), time.monotonic())
            for future in done:
                index, ended = running.pop(future)
                typical.ended(ended)
                result = future.result()
                timings.ended(work[index][0].name, result)
                results[index] = result
                if on_result is not None:
                    on_result(result)
    except BaseException:  # Ctrl-C: grade nothing more (the running pytest processes got the signal too)
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [results[i] for i in range(len(work))]


def _workers_for(
    sub: StudentSubmission, assignment: Assignment, workers: tuple[int, int], in_tail: bool, timings: ClassTimings
) -> int:
    """The usual check workers, or the tail's where the assignment's checks take long (:class:`ClassTimings`)."""
    if sub.stop_early is not None:  # side by side, xdist would run every check already handed out
        return 1
    return workers[1] if in_tail and timings.tail_pays(assignment.name) else workers[0]


def write_class_reports(
    out: Path,
    assignment: Assignment,
    results: Sequence[SubmissionResult],
    *,
    source: str = "",
    canvas: CanvasColumn | None = None,
) -> Path:
    """Write index.html, grades.csv and, per student, an HTML report, Gradescope JSON and the model JSON.

    When every result came from a Canvas export (:func:`has_canvas_ids`),
    also ``canvas.csv``, the gradebook Canvas imports: its column is
    ``canvas.name`` (default, or without ``canvas``: the assignment's title), with
    ``canvas.assignment_id`` titled ``"Name (id)"`` so Canvas updates that
    assignment instead of creating one.

    Returns the path of ``index.html``.
    """
    out = Path(out)
    students = out / "students"
    students.mkdir(parents=True, exist_ok=True)
    slugs = student_slugs([r.student for r in results])
    links: dict[str, str] = {}
    for result in results:
        slug = slugs[result.student]
        links[result.student] = f"students/{slug}.html"
        write_student_html(result, students / f"{slug}.html", title=assignment.title, back_link="../index.html")
        write_gradescope(result, students / f"{slug}.gradescope.json")
        write_atomic(students / f"{slug}.result.json", json.dumps(result.to_dict(), indent=1))
    write_gradebook(results, out / "grades.csv")
    if has_canvas_ids(results):
        graded = [r.max_score for r in results if r.graded]
        column = canvas or CanvasColumn()
        write_canvas_csv(
            results, out / "canvas.csv", column.name or assignment.title, assignment_id=column.assignment_id,
            points_possible=max(graded) if graded else None,
        )
    index = out / "index.html"
    write_class_html(results, index, title=assignment.title, assignment=assignment.name, links=links, source=source)
    return index


def examples_dir() -> Path:
    """The bundled sample class (inside an installed package, or the source tree)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "examples"
    return packaged if packaged.is_dir() else here.parent / "examples"
