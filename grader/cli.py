"""The ``grader`` command: a thin layer over one function per verb.

Exit codes: 0 when everything asked for succeeded (for ``check``: every check
passed; for ``grade``: every submission was graded), 1 when a graded submission lost points
(for ``grade``: some submission could not be graded), 2 when the grader could not do
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

from grader import __version__
from grader.exporters import render_text, write_gradescope
from grader.exporters.canvas import CanvasColumn, CanvasExportError
from grader.exporters.files import write_atomic
from grader.exporters.github import GitHubOutputError, write_github_output
from grader.exporters.junit import write_junit
from grader.exporters.prairielearn import prairielearn_ungradable, to_prairielearn, write_prairielearn
from grader.grading.autograder import AutograderError, build_zip
from grader.grading.canvas_options import add_canvas_options, canvas_line, canvas_options
from grader.grading.grade import default_check_workers, grade_submission
from grader.grading.precheck import format_errors
from grader.grading.validate import explain_config, gate, report_assignment_errors, validate_command
from grader.model.assignment import Assignment, AssignmentError, bundled_assignments, find_assignment
from grader.model.problems import problems_of
from grader.model.results import SubmissionResult

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
    if args.prairielearn:
        problems = format_errors(assignment, submission)
        if problems:
            write_prairielearn(prairielearn_ungradable(problems), Path(args.prairielearn))
            print(f"{assignment.name}: {submission}: cannot be graded:", *problems, sep="\n  ")
            return EXIT_LOST_POINTS
    if not submission.exists():
        raise CommandError(f"submission not found: {submission}")
    if submission.is_file() and submission.suffix != ".py":
        raise CommandError(f"a submission is a .py file or a folder, not {submission.name}")
    _require_sandbox(args)
    workers = _check_workers(args) or default_check_workers(1)
    result = grade_submission(
        assignment, submission, student=args.student or "", check_workers=workers, unsafe=args.unsafe_no_sandbox
    )
    colour = sys.stdout.isatty() and not args.no_colour
    sys.stdout.write(render_text(result, colour=colour, show_output=args.show_output))
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


SCAFFOLD = Path(__file__).parent / "scaffold"


def cmd_new(args: argparse.Namespace) -> int:
    name = args.name
    if not name.isidentifier() or name.startswith("_"):
        raise CommandError(f"{name!r} cannot be an assignment name: use letters, digits and _ (a Python module name)")
    parent = Path(args.dir)
    if not parent.is_dir():
        raise CommandError(f"folder not found: {parent}")
    folder = parent / name
    solution = parent / "reference" / f"{name}.py"
    for path in (folder, solution):
        if path.exists():
            raise CommandError(f"{path} already exists; choose another name or folder")
    values = {"name": name, "title": name.replace("_", " ").capitalize()}

    def render(template: str) -> str:
        return (SCAFFOLD / template).read_text(encoding="utf-8").format(**values)

    (folder / "starter").mkdir(parents=True)
    (folder / "assignment.toml").write_text(render("assignment.toml.tmpl"), encoding="utf-8")
    (folder / "README.md").write_text(render("README.md.tmpl"), encoding="utf-8")
    (folder / "starter" / f"{name}.py").write_text(render("starter.py.tmpl"), encoding="utf-8")
    (folder / f"test_{name}.py").write_text(render("test_checks.py.tmpl"), encoding="utf-8")
    solution.parent.mkdir(exist_ok=True)
    solution.write_text(render("solution.py.tmpl"), encoding="utf-8")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade Python concurrency assignments (threads, processes, Queue, Lock, Pool, Pipe). "
        "Student code runs in sandboxed processes; checks judge what was recorded there.",
        epilog="Exit status: 0 all good, 1 a submission lost points, 2 the grader could not run.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True
    _add_list(verbs)
    _add_check(verbs)
    _add_new(verbs)
    _add_gradescope(verbs)
    _add_grade(verbs)
    _add_merge(verbs)
    _add_validate(verbs)
    _add_demo(verbs)
    return parser


def _add_list(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser("list", help="list the bundled assignments", description="List the bundled assignments.")
    p.set_defaults(func=cmd_list)


def _add_check(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "check",
        help="grade one submission",
        description="Grade one submission and print what passed, what failed and why. "
        "ASSIGNMENT is a bundled assignment's name (see `grader list`) or the path of an assignment folder. "
        "SUBMISSION is the student's .py file (any name) or a folder holding the assignment's module.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("submission", metavar="SUBMISSION")
    p.add_argument("--json", metavar="PATH", help="also write Gradescope's results.json to PATH")
    p.add_argument("--result", metavar="PATH", help="also write the grader's own result model (JSON) to PATH")
    p.add_argument("--html", metavar="PATH", help="also write the report as a self-contained HTML page to PATH")
    p.add_argument("--student", metavar="NAME", help="the student's name, shown in reports")
    p.add_argument("--show-output", action="store_true", help="show what the program printed for failed checks")
    p.add_argument("--no-colour", "--no-color", action="store_true", help="plain text even on a terminal")
    p.add_argument(
        "--prairielearn", metavar="PATH", help="also write PrairieLearn's external-grader results.json to PATH"
    )
    p.add_argument(
        "--github", action="store_true", help="also set the GitHub Classroom runner result (step output 'result')"
    )
    p.add_argument("--junit", metavar="PATH", help="also write JUnit XML to PATH (CodeGrade: $CG_JUNIT_XML_LOCATION)")
    _add_check_workers(p, "default: one per CPU, at most the number of checks")
    _add_unsafe(p)
    p.set_defaults(func=cmd_check)


def _add_unsafe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="as root, grade even where student code cannot get a sandbox uid of its own and would run as root "
        "with every capability (refused otherwise, exit status 2); every report then says so",
    )


def _add_new(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "new",
        help="scaffold a new assignment folder",
        description="Create NAME/ (assignment.toml, student README, starter, a check file that works) and "
        "reference/NAME.py (a solution with full marks) inside --dir, as a starting point for your own assignment.",
    )
    p.add_argument("name", metavar="NAME", help="the assignment's name, also the module students submit (NAME.py)")
    p.add_argument("--dir", default=".", metavar="DIR", help="where to create it (default: the current folder)")
    p.set_defaults(func=cmd_new)


def _add_gradescope(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "gradescope",
        help="build a Gradescope autograder zip",
        description="Build the autograder zip for a Gradescope programming assignment: setup.sh and run_autograder "
        "at its root, the grader as a wheel and the assignment's checks (no reference solution).",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT", help="a bundled assignment's name or an assignment folder")
    p.add_argument("-o", "--output", metavar="ZIP", default="autograder.zip", help="where to write the zip")
    p.set_defaults(func=cmd_gradescope)


def _add_grade(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "grade",
        help="grade a whole class",
        description="Grade every submission in SUBMISSIONS and write a class summary (index.html), one HTML report, "
        "Gradescope JSON and result JSON per student, and a gradebook (grades.csv) into DIR. "
        "SUBMISSIONS is a folder with one folder or .py file per student, a .zip of such a folder, "
        "or a Canvas or Gradescope 'Download submissions' export. "
        "Exit status: 0 every submission was graded (whatever the scores), 1 some could not be graded, "
        "2 the batch could not run.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the reports (created if missing)")
    _add_jobs(p)
    _add_check_workers(p, "default: the CPUs left by -j, at least 1: 1 with -j 2 on 2 CPUs, 4 on 8 CPUs")
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="grade only the I-th of N slices of the class (students sorted by name, every N-th from the I-th; "
        "I counts from 1); combine the N result folders with `grader merge`",
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        help="a reference solution: validate the assignment with it first (`grader validate`) and grade no one "
        "unless it is sound and the reference gets full marks",
    )
    _add_unsafe(p)
    add_canvas_options(p)
    p.set_defaults(func=cmd_grade)


def _add_validate(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "validate",
        help="check an assignment folder (and its reference solution) for the instructor's mistakes",
        description="Lint an assignment: its config, check files and drivers.py (names of drivers and probes, points, "
        "visibility), that the checks import, and that REFERENCE (default: reference/<module> beside the folder, as "
        "`grader new` makes it) gets full marks. One block per problem, 'assignment error: FILE:LINE: what'. "
        "Exit status: 0 valid, 2 the assignment is broken.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT", help="a bundled assignment's name or an assignment folder")
    p.add_argument("reference", metavar="REFERENCE", nargs="?", help="a reference solution, graded: it must get full marks")
    p.add_argument("--no-reference", action="store_true", help="do not look for a reference solution beside the folder")
    _add_check_workers(p, "default: one per CPU, at most the number of checks")
    _add_unsafe(p)
    p.set_defaults(func=cmd_validate)


def _add_merge(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "merge",
        help="merge the result folders of grader grade --shard",
        description="Combine the result folders that `grader grade --shard I/N` wrote (all N of them, one class, "
        "one assignment) into one class summary, gradebook and set of student reports in DIR, the same as one "
        "unsharded `grader grade` writes. Exit status as for grade.",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="the --out folders of the shards")
    p.add_argument("--out", metavar="DIR", required=True, help="folder for the merged reports (created if missing)")
    add_canvas_options(p)
    p.set_defaults(func=cmd_merge)


def _add_demo(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = verbs.add_parser(
        "demo",
        help="grade the bundled sample class",
        description="Grade the sample class bundled in examples/ (one folder per assignment, one file per student) "
        "and write the reports, to see what instructors get.",
    )
    p.add_argument("--out", metavar="DIR", default="reports", help="folder for the reports (default: reports)")
    _add_jobs(p)
    _add_check_workers(p, "default: the CPUs left by -j, at least 1")
    p.set_defaults(func=cmd_demo)


def _canvas_options(args: argparse.Namespace, assignment: Assignment) -> CanvasColumn:
    try:
        return canvas_options(args, assignment.title)
    except CanvasExportError as exc:
        raise CommandError(str(exc)) from None


def _add_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=int,
        default=None,
        help="submissions graded at the same time (default: the number of CPUs); one that only waits (a deadlock "
        "running into its time limits) gives its place to the next while a CPU is idle, up to 3N at once",
    )


def _add_check_workers(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--check-workers",
        metavar="K",
        type=int,
        default=None,
        help=f"checks of one submission run at the same time, each in its own sandbox ({default}; 1: one after another)",
    )


def _check_workers(args: argparse.Namespace) -> int | None:
    if args.check_workers is None:
        return None
    if args.check_workers < 1:
        raise CommandError(f"--check-workers must be at least 1, got {args.check_workers}")
    return int(args.check_workers)


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


def _grade_class(
    assignment: Assignment,
    source: Path,
    out: Path,
    jobs: int,
    check_workers: int | None = None,
    shard: tuple[int, int] = (1, 1),
    unsafe: bool = False,
    canvas: CanvasColumn | None = None,
) -> list[SubmissionResult]:
    from grader.grading.batch import (
        BatchError,
        Progress,
        check_worker_plan,
        collect_submissions,
        grade_all,
        student_slugs,
        write_class_reports,
    )
    from grader.grading.shards import select_shard, write_manifest

    workers, last_workers = check_worker_plan(jobs, check_workers)
    with tempfile.TemporaryDirectory(prefix="grader-batch-") as tmp:
        try:
            everyone, kind = collect_submissions(source, Path(tmp), module_file=assignment.module_file, exclude=[out])
        except BatchError as exc:
            raise CommandError(str(exc)) from None
        names = [s.student for s in everyone]
        positions = select_shard(names, *shard) if shard != (1, 1) else list(range(len(everyone)))
        submissions = [everyone[i] for i in positions]
        part = f" (shard {shard[0]}/{shard[1]}: {len(submissions)} of {len(everyone)})" if shard != (1, 1) else ""
        print(
            f"Grading {len(submissions)} submission(s) of {assignment.name} from {source} ({kind}){part}, "
            f"{jobs} at a time, {workers} check(s) at a time each"
            + (f" (the last {jobs}: {last_workers})." if last_workers != workers else "."),
            file=sys.stderr,
        )
        results = grade_all(assignment, submissions, jobs=jobs, check_workers=check_workers,
                            on_result=Progress(len(submissions)).update, unsafe=unsafe)
    described = f"{source.name} ({kind})"
    try:
        write_class_reports(out, assignment, results, source=described + part, canvas=canvas)
        slugs = student_slugs([r.student for r in results])
        write_manifest(
            out,
            assignment,
            shard=shard,
            class_names=names,
            positions=positions,
            slugs=[slugs[r.student] for r in results],
            source=described,
        )
    except (OSError, CanvasExportError) as exc:
        raise CommandError(f"cannot write the reports into {out}: {exc}") from None
    return results


def _report_not_graded(results: list[SubmissionResult], out: Path, canvas_note: str = "") -> int:
    not_graded = [r.student for r in results if not r.graded]
    print(f"Class summary: {out / 'index.html'}")
    print(f"Gradebook:     {out / 'grades.csv'}")
    if canvas_note:
        print(canvas_note)
    if not_graded:
        print(f"grader: {len(not_graded)} submission(s) could not be graded: {', '.join(not_graded)}", file=sys.stderr)
        return EXIT_LOST_POINTS
    return EXIT_OK


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
    canvas = _canvas_options(args, assignment)
    if args.reference:
        stopped = gate(assignment, Path(args.reference), workers or default_check_workers(1), args.unsafe_no_sandbox)
        if stopped:
            raise CommandError(stopped)
    out = _prepare_out(args.out)
    results = _grade_class(assignment, Path(args.submissions), out, jobs, workers, shard, args.unsafe_no_sandbox, canvas)
    status = _report_not_graded(results, out, canvas_line(args, results, out, canvas))
    return EXIT_CANNOT if report_assignment_errors(results) else status


def cmd_merge(args: argparse.Namespace) -> int:
    from grader.grading.batch import write_class_reports
    from grader.grading.shards import ShardError, read_shards

    out = Path(args.out)
    sources = [Path(d) for d in args.folders]
    if any(out.resolve() == d.resolve() for d in sources):
        raise CommandError(f"--out {out} is one of the folders to merge; write the merged reports into a new folder")
    try:
        assignment, results, source = read_shards(sources)
    except ShardError as exc:
        raise CommandError(str(exc)) from None
    canvas = _canvas_options(args, assignment)
    out = _prepare_out(args.out)
    from grader.grading.batch import student_slugs
    from grader.grading.shards import write_manifest

    try:
        write_class_reports(out, assignment, results, source=source, canvas=canvas)
        slugs = student_slugs([r.student for r in results])
        write_manifest(
            out,
            assignment,
            shard=(1, 1),
            class_names=[r.student for r in results],
            positions=list(range(len(results))),
            slugs=[slugs[r.student] for r in results],
            source=source,
        )
    except (OSError, CanvasExportError) as exc:
        raise CommandError(f"cannot write the reports into {out}: {exc}") from None
    print(f"Merged {len(results)} result(s) of {assignment.name} from {len(sources)} folder(s).", file=sys.stderr)
    return _report_not_graded(results, out, canvas_line(args, results, out, canvas))


def cmd_demo(args: argparse.Namespace) -> int:
    from grader.exporters.html import write_index_html
    from grader.grading.batch import examples_dir

    root = examples_dir()
    classes = []
    if root.is_dir():
        classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    if not classes:
        raise CommandError(f"no sample class found in {root} (is the package installed correctly?)")
    jobs = _jobs(args)
    out = _prepare_out(args.out)
    started = time.monotonic()
    overview = []
    for folder in classes:
        assignment = _load(folder.name)
        results = _grade_class(assignment, folder, out / assignment.name, jobs, _check_workers(args))
        graded = [r for r in results if r.graded]
        overview.append(
            {
                "name": assignment.name,
                "title": assignment.title,
                "link": f"{assignment.name}/index.html",
                "count": len(results),
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




def main(argv: list[str] | None = None) -> int:
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
