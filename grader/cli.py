"""The ``grader`` command: a thin layer over one function per verb.

Exit codes: 0 when everything asked for succeeded (for ``check``: every check
passed; for ``grade``: every submission was graded), 1 when a graded submission lost points
or no gradable file was found in it (for ``grade``: some submission had no gradable file or
could not be graded), 2 when the grader could not do
what was asked (unknown assignment, missing path, bad option); errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from grader import arguments
from grader.arguments import Command
from grader.exporters import write_gradescope
from grader.exporters.canvas import CanvasColumn, CanvasExportError
from grader.exporters.files import write_atomic
from grader.exporters.github import GitHubOutputError, write_github_output
from grader.exporters.junit import write_junit
from grader.exporters.prairielearn import prairielearn_ungradable, to_prairielearn, write_prairielearn
from grader.exporters.terminal import NORMAL, QUIET
from grader.grading.archives import ArchiveError
from grader.grading.autograder import AutograderError, build_zip
from grader.grading.canvas_options import canvas_note, canvas_options
from grader.grading.check import grade_shown, unzipped
from grader.grading.grade import default_check_workers, let_gradings_fork_this_process
from grader.grading.outdir import OutFolder, OutFolderError, inspect_out, write_results
from grader.grading.precheck import format_errors
from grader.grading.validate import default_reference, explain_config, gate, report_assignment_errors, validate_command
from grader.model.assignment import Assignment, AssignmentError, bundled_assignments, find_assignment
from grader.model.problems import problems_of
from grader.model.results import SubmissionResult
from grader.processes import pid_namespaces_available

__all__ = ["main"]

EXIT_OK, EXIT_LOST_POINTS, EXIT_CANNOT = 0, 1, 2


class CommandError(Exception):
    """A user mistake: reported as one line, exit status 2."""


def cmd_list(args: argparse.Namespace) -> int:
    assignments = bundled_assignments()
    if not assignments:
        raise CommandError("no bundled assignments were found (is the package installed correctly?)")
    width = max(len(a.name) for a in assignments)
    for a in assignments:
        print(f"{a.name:<{width}}  {a.module_file:<22} {a.summary}")
    return EXIT_OK


def _load(name: str) -> Assignment:
    try:
        return find_assignment(name)
    except AssignmentError as exc:
        if explain_config(name, exc):  # printed where the config is broken, as `grader validate` does
            raise CommandError(f"{name}: the assignment's config is broken (`grader validate {name}`)") from None
        raise CommandError(str(exc)) from None


def _require_sandbox(args: argparse.Namespace) -> None:
    """Fail closed: as root, refuse to grade where student code would keep root's uid, unless ``--unsafe-no-sandbox``."""
    from grader.uid_locks import sandbox_refusal

    problem = sandbox_refusal()
    if problem is None:
        return
    if args.unsafe_no_sandbox:
        print(f"grader: warning: {problem}; --unsafe-no-sandbox: student code runs as root", file=sys.stderr)
        return
    raise CommandError(
        f"refusing to run student code as root without a sandbox uid: {problem} "
        "(fix that, or pass --unsafe-no-sandbox to run it unprotected)"
    )


def cmd_check(args: argparse.Namespace) -> int:
    assignment = _load(args.assignment)
    submission = Path(args.submission)
    if args.github and not os.environ.get("GITHUB_OUTPUT"):
        raise CommandError(
            "--github writes to the file named in $GITHUB_OUTPUT, which is not set "
            "(run it as a step of a GitHub Actions workflow)"
        )
    with tempfile.TemporaryDirectory(prefix="grader-check-") as tmp:
        zipped = submission.suffix.lower() == ".zip" and submission.is_file()
        try:
            graded = unzipped(submission, Path(tmp)) if zipped else submission
        except ArchiveError as exc:
            raise CommandError(str(exc)) from None
        if args.prairielearn:
            problems = format_errors(assignment, graded)
            if problems:
                write_prairielearn(prairielearn_ungradable(problems), Path(args.prairielearn))
                print(f"{assignment.name}: {submission}: cannot be graded:", *problems, sep="\n  ")
                return EXIT_LOST_POINTS
        if not submission.exists():
            raise CommandError(f"submission not found: {submission}")
        if submission.is_file() and not zipped and submission.suffix.lower() not in (".py", ".ipynb"):
            raise CommandError(
                f"a submission is a .py file, a notebook (.ipynb), a folder or a .zip of a folder, not {submission.name}"
            )
        _require_sandbox(args)
        from grader.grading import timings

        plan = timings.plan(assignment, default_check_workers(1), _check_workers(args))
        result = grade_shown(
            assignment, graded, submission, student=args.student or "", unsafe=args.unsafe_no_sandbox,
            check_workers=plan.workers, first=plan.first, show_output=args.show_output,
            verbosity=max(QUIET, NORMAL + args.verbose - args.quiet), no_colour=args.no_colour,
        )
        timings.remember(assignment, result, plan)
    if args.json:
        write_gradescope(result, Path(args.json))
    if args.result:
        write_atomic(args.result, json.dumps(result.to_dict(), indent=1))
    _write_lms_exports(result, args)
    if args.html:
        from grader.exporters.html import write_student_html

        write_student_html(result, Path(args.html), title=assignment.title)
    if problems_of(result.metadata):
        report_assignment_errors([result])
        return EXIT_CANNOT
    if result.no_submission is not None:  # the student's mistake, not the grader's
        return EXIT_LOST_POINTS
    if not result.graded:
        return EXIT_CANNOT
    return EXIT_OK if result.full_marks else EXIT_LOST_POINTS


def cmd_validate(args: argparse.Namespace) -> int:
    if not args.no_reference:
        _require_sandbox(args)
    workers = _check_workers(args) or default_check_workers(1)
    try:
        valid = validate_command(args.assignment, args.reference, not args.no_reference, workers, args.unsafe_no_sandbox)
    except (AssignmentError, FileNotFoundError) as exc:
        raise CommandError(str(exc)) from None
    return EXIT_OK if valid else EXIT_CANNOT


def cmd_new(args: argparse.Namespace) -> int:
    from grader.grading.scaffold import ScaffoldError, create_assignment

    name = args.name
    try:
        folder, solution = create_assignment(name, Path(args.dir))
    except ScaffoldError as exc:
        raise CommandError(str(exc)) from None
    print(f"created {folder}/ (config, student README, starter, checks) and the solution {solution}")
    print("next:")
    print(f"  grader check {folder} {solution}                 # the solution gets full marks")
    print(f"  grader check {folder} {folder / 'starter' / (name + '.py')}    # the starter does not")
    print("then edit the README, the starter, the checks and the solution; see docs/authoring.md")
    return EXIT_OK


def _write_lms_exports(result: SubmissionResult, args: argparse.Namespace) -> None:
    """The --prairielearn, --junit and --github outputs of ``grader check``."""
    if args.prairielearn:
        write_prairielearn(to_prairielearn(result), Path(args.prairielearn))
    if args.junit:
        write_junit(result, Path(args.junit))
    if args.github:
        try:
            write_github_output(result)
        except GitHubOutputError as exc:
            raise CommandError(str(exc)) from None


def cmd_gradescope(args: argparse.Namespace) -> int:
    assignment = _load(args.assignment)
    output = Path(args.output)
    try:
        names = build_zip(assignment, output)
    except AutograderError as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {output} ({output.stat().st_size // 1024} KiB, {len(names)} files) for {assignment.name}")
    print("upload it as the assignment's autograder on Gradescope (Ubuntu 22.04 or newer base image)")
    return EXIT_OK


def _check_workers(args: argparse.Namespace) -> int | None:
    if args.check_workers is None:
        return None
    if args.check_workers < 1:
        raise CommandError(f"--check-workers must be at least 1, got {args.check_workers}")
    return int(args.check_workers)


def _warn_not_isolated(jobs: int) -> None:
    """With several submissions at once and neither root nor user namespaces, say they are not isolated."""
    if jobs > 1 and os.geteuid() != 0 and not pid_namespaces_available():
        print(
            f"grader: warning: -j {jobs} grades submissions side by side, but without root or user namespaces they "
            "are NOT isolated from each other (one can see and signal the others' processes); every report says "
            "so. Grade as root, or with -j 1, for grades no other submission can disturb.",
            file=sys.stderr,
        )


def _jobs(args: argparse.Namespace) -> int:
    if args.jobs is None:
        return os.cpu_count() or 1
    if args.jobs < 1:
        raise CommandError(f"-j must be at least 1, got {args.jobs}")
    return int(args.jobs)


def _prepare_out(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandError(f"cannot create the output folder {out}: {exc}") from None
    if not os.access(out, os.W_OK):
        raise CommandError(f"cannot write into the output folder {out}")
    return out


class _Class:
    """One class to grade: its submissions, and what its reports need."""

    def __init__(self, assignment: Assignment, source: Path, out: Path, workdir: Path, shard: tuple[int, int] = (1, 1),
                 force: bool = False) -> None:
        from grader.grading.batch import BatchError, collect_submissions
        from grader.grading.shards import select_shard

        self.assignment, self.source, self.out, self.shard = assignment, source, out, shard
        self.previous = _inspect_out(out, force)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            everyone, self.kind = collect_submissions(source, workdir, module_file=assignment.module_file, exclude=[out])
        except BatchError as exc:
            raise CommandError(str(exc)) from None
        self.names = [s.student for s in everyone]
        self.positions = select_shard(self.names, *shard) if shard != (1, 1) else list(range(len(everyone)))
        self.submissions = [everyone[i] for i in self.positions]
        self.part = (f" (shard {shard[0]}/{shard[1]}: {len(self.submissions)} of {len(everyone)})"
                     if shard != (1, 1) else "")

    def announce(self, jobs: int, workers: int, last_workers: int) -> None:
        print(
            f"Grading {len(self.submissions)} submission(s) of {self.assignment.name} from {self.source} ({self.kind})"
            f"{self.part}, {jobs} at a time, {workers} check(s) at a time each"
            + (f" (the last {jobs}: {last_workers}, where the checks take long)." if last_workers != workers else "."),
            file=sys.stderr,
        )

    def write(self, results: list[SubmissionResult], canvas: CanvasColumn | None = None) -> None:
        described = f"{self.source.name} ({self.kind})"
        try:
            write_results(
                self.previous, self.assignment, results, source=described, heading=described + self.part,
                shard=self.shard, class_names=self.names, positions=self.positions, canvas=canvas,
            )
        except (OSError, CanvasExportError) as exc:
            raise CommandError(f"cannot write the reports into {self.out}: {exc}") from None


def _grade_class(
    assignment: Assignment,
    source: Path,
    out: Path,
    jobs: int,
    check_workers: int | None = None,
    shard: tuple[int, int] = (1, 1),
    unsafe: bool = False,
    force: bool = False,
    canvas: CanvasColumn | None = None,
) -> list[SubmissionResult]:
    from grader.grading.batch import Progress, check_worker_plan, grade_all

    workers, last_workers = check_worker_plan(jobs, check_workers)
    with tempfile.TemporaryDirectory(prefix="grader-batch-") as tmp:
        one = _Class(assignment, source, out, Path(tmp), shard, force)
        one.announce(jobs, workers, last_workers)
        results = grade_all(
            assignment,
            one.submissions,
            jobs=jobs,
            check_workers=check_workers,
            on_result=Progress(len(one.submissions)).update,
            unsafe=unsafe,
        )
    one.write(results, canvas)
    return results


def _inspect_out(out: Path, force: bool) -> OutFolder:
    """The previous run's files in ``out``; refuses an ``out`` holding other files unless ``force``."""
    try:
        return inspect_out(out, force=force)
    except OutFolderError as exc:
        raise CommandError(str(exc)) from None


def _report_not_graded(results: list[SubmissionResult], out: Path, note: str = "") -> int:
    not_graded = [r.student for r in results if not r.graded and r.no_submission is None]
    missing = [r.student for r in results if r.no_submission is not None]
    print(f"Class summary: {out / 'index.html'}")
    print(f"Gradebook:     {out / 'grades.csv'}")
    if note:
        print(note)
    if missing:
        had = "student had" if len(missing) == 1 else "students had"
        print(
            f"grader: {len(missing)} {had} no gradable submission: {', '.join(missing)} "
            "(see 'No submission found' in index.html)",
            file=sys.stderr,
        )
    if not_graded:
        print(f"grader: {len(not_graded)} submission(s) could not be graded: {', '.join(not_graded)}", file=sys.stderr)
    return EXIT_LOST_POINTS if missing or not_graded else EXIT_OK


def cmd_grade(args: argparse.Namespace) -> int:
    from grader.grading.shards import ShardError, parse_shard

    assignment = _load(args.assignment)
    jobs = _jobs(args)
    workers = _check_workers(args)
    shard = (1, 1)
    if args.shard is not None:
        try:
            shard = parse_shard(args.shard)
        except ShardError as exc:
            raise CommandError(str(exc)) from None
    _require_sandbox(args)
    _warn_not_isolated(jobs)
    if args.reference:
        stopped = gate(assignment, Path(args.reference), workers or default_check_workers(1), args.unsafe_no_sandbox)
        if stopped:
            raise CommandError(stopped)
    out = _prepare_out(args.out)
    results = _grade_class(
        assignment, Path(args.submissions), out, jobs, workers, shard, args.unsafe_no_sandbox, force=args.force,
        canvas=canvas_options(args),
    )
    status = _report_not_graded(results, out, canvas_note(args, results, out, assignment.title))
    return EXIT_CANNOT if report_assignment_errors(results) else status


def cmd_merge(args: argparse.Namespace) -> int:
    from grader.grading.shards import ShardError, read_shards

    out = Path(args.out)
    sources = [Path(d) for d in args.folders]
    if any(out.resolve() == d.resolve() for d in sources):
        raise CommandError(f"--out {out} is one of the folders to merge; write the merged reports into a new folder")
    try:
        assignment, results, source = read_shards(sources)
    except ShardError as exc:
        raise CommandError(str(exc)) from None
    out = _prepare_out(args.out)
    previous = _inspect_out(out, args.force)
    try:
        write_results(previous, assignment, results, source=source, heading=source, canvas=canvas_options(args))
    except (OSError, CanvasExportError) as exc:
        raise CommandError(f"cannot write the reports into {out}: {exc}") from None
    print(f"Merged {len(results)} result(s) of {assignment.name} from {len(sources)} folder(s).", file=sys.stderr)
    return _report_not_graded(results, out, canvas_note(args, results, out, assignment.title))


def cmd_demo(args: argparse.Namespace) -> int:
    from grader.exporters.html import write_index_html
    from grader.grading.batch import Progress, check_worker_plan, examples_dir, grade_many

    root = examples_dir()
    folders = []
    if root.is_dir():
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not folders:
        raise CommandError(f"no sample class found in {root} (is the package installed correctly?)")
    jobs = _jobs(args)
    out = _prepare_out(args.out)
    started = time.monotonic()
    workers, last_workers = check_worker_plan(jobs, _check_workers(args))
    overview = []
    with tempfile.TemporaryDirectory(prefix="grader-demo-") as tmp:
        classes = []
        for folder in folders:  # every class in one queue: no CPU waits for the end of a class
            assignment = _load(folder.name)
            classes.append(_Class(assignment, folder, out / assignment.name, Path(tmp) / folder.name))
            classes[-1].announce(jobs, workers, workers)
        # the largest class first: its gradings spread over the whole run, the small ones fill the end
        queue = sorted(classes, key=lambda one: -len(one.submissions))
        work = [(one.assignment, sub) for one in queue for sub in one.submissions]
        print(f"All {len(work)} in one queue, largest class first; the last {jobs}: {last_workers} check(s) at a "
              "time each, where the checks take long.", file=sys.stderr)
        results = grade_many(work, jobs=jobs, check_workers=_check_workers(args), on_result=Progress(len(work)).update)
    by_class = {}
    for one in queue:
        by_class[id(one)], results = results[: len(one.submissions)], results[len(one.submissions):]
    for one in classes:
        mine = by_class[id(one)]
        one.write(mine)
        graded = [r for r in mine if r.graded]
        overview.append(
            {
                "name": one.assignment.name,
                "title": one.assignment.title,
                "link": f"{one.assignment.name}/index.html",
                "count": len(mine),
                "mean": round(sum(r.score for r in graded) / len(graded), 2) if graded else 0.0,
                "max_score": max((r.max_score for r in graded), default=0.0),
                "full_marks": sum(1 for r in graded if r.full_marks),
            }
        )
    index = out / "index.html"
    write_index_html(overview, index, title="Sample class")
    print(f"Graded the sample class in {time.monotonic() - started:.0f}s.")
    print(f"Open {index.resolve().as_uri()}")
    return EXIT_OK


def cmd_mutants(args: argparse.Namespace) -> int:
    from grader.mutation.config import MutantsConfigError
    from grader.mutation.mutants import MutationError
    from grader.mutation.report import render_table, write_html, write_json
    from grader.mutation.run import run_mutants

    assignment = _load(args.assignment)
    if args.runs < 1:
        raise CommandError(f"--runs must be at least 1, got {args.runs}")
    jobs = _jobs(args)
    reference = Path(args.reference) if args.reference else default_reference(assignment.path, assignment.module_file)
    if reference is None:
        raise CommandError(
            f"no reference solution found for {assignment.name} (looked for reference/{assignment.module_file} beside "
            "the folder); give one with --reference FILE"
        )
    if not reference.is_file():
        raise CommandError(f"reference solution not found: {reference}")
    _require_sandbox(args)
    try:
        report = run_mutants(
            assignment, reference, runs=args.runs, jobs=jobs, unsafe=args.unsafe_no_sandbox, full_runs=args.full_runs
        )
    except (MutationError, MutantsConfigError) as exc:
        raise CommandError(str(exc)) from None
    sys.stdout.write(render_table(report))
    if args.html:
        write_html(report, Path(args.html))
    if args.json:
        write_json(report, Path(args.json))
    return report.exit_code


COMMANDS: dict[str, Command] = {
    "list": cmd_list,
    "check": cmd_check,
    "new": cmd_new,
    "gradescope": cmd_gradescope,
    "grade": cmd_grade,
    "merge": cmd_merge,
    "validate": cmd_validate,
    "demo": cmd_demo,
    "mutants": cmd_mutants,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``grader`` command line (:mod:`grader.arguments`) with this module's commands."""
    return arguments.build_parser(COMMANDS)


def main(argv: list[str] | None = None) -> int:
    """The ``grader`` command; its exit status."""
    let_gradings_fork_this_process()  # this process is the grader and nothing else
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
