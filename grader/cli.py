"""The ``grader`` command: a thin layer over one function per verb.

Exit codes: 0 when everything asked for succeeded (for ``check``: every check
passed), 1 when a graded submission lost points, 2 when the grader could not do
what was asked (unknown assignment, missing path, bad option); errors are one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import __version__
from .assignment import AssignmentError, bundled_assignments, find_assignment
from .autograder import AutograderError, build_zip
from .exporters import render_text, write_gradescope
from .exporters.github import GitHubOutputError, write_github_output
from .exporters.junit import write_junit
from .exporters.prairielearn import prairielearn_ungradable, to_prairielearn, write_prairielearn
from .grading import grade_submission
from .precheck import format_errors
from .results import SubmissionResult

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


def _load(name: str):  # type: ignore[no-untyped-def]
    try:
        return find_assignment(name)
    except AssignmentError as exc:
        raise CommandError(str(exc)) from None


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
    result = grade_submission(assignment, submission, student=args.student or "")
    colour = sys.stdout.isatty() and not args.no_colour
    sys.stdout.write(render_text(result, colour=colour, show_output=args.show_output))
    if args.json:
        write_gradescope(result, Path(args.json))
    if args.result:
        Path(args.result).write_text(json.dumps(result.to_dict(), indent=1), encoding="utf-8")
    _write_lms_exports(result, args)
    if not result.graded:
        return EXIT_CANNOT
    return EXIT_OK if result.full_marks else EXIT_LOST_POINTS


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

    p = verbs.add_parser("list", help="list the bundled assignments", description="List the bundled assignments.")
    p.set_defaults(func=cmd_list)

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
    p.set_defaults(func=cmd_check)

    p = verbs.add_parser(
        "new",
        help="scaffold a new assignment folder",
        description="Create NAME/ (assignment.toml, student README, starter, a check file that works) and "
        "reference/NAME.py (a solution with full marks) inside --dir, as a starting point for your own assignment.",
    )
    p.add_argument("name", metavar="NAME", help="the assignment's name, also the module students submit (NAME.py)")
    p.add_argument("--dir", default=".", metavar="DIR", help="where to create it (default: the current folder)")
    p.set_defaults(func=cmd_new)

    p = verbs.add_parser(
        "gradescope",
        help="build a Gradescope autograder zip",
        description="Build the autograder zip for a Gradescope programming assignment: setup.sh and run_autograder "
        "at its root, the grader as a wheel and the assignment's checks (no reference solution).",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT", help="a bundled assignment's name or an assignment folder")
    p.add_argument("-o", "--output", metavar="ZIP", default="autograder.zip", help="where to write the zip")
    p.set_defaults(func=cmd_gradescope)
    return parser




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
