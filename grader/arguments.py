"""The ``grader`` command line's arguments: one small function per verb, the help written once.

The functions that carry the verbs out live in :mod:`grader.cli` and are handed in, so this
module holds only the shape of the command line.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import TypeAlias

from grader import __version__
from grader.grading.canvas_options import add_canvas_options

__all__ = ["Command", "build_parser"]

Command = Callable[[argparse.Namespace], int]
Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser(commands: Mapping[str, Command]) -> argparse.ArgumentParser:
    """The ``grader`` command line; ``commands`` maps each verb to the function that carries it out."""
    parser = argparse.ArgumentParser(
        prog="grader",
        description="Grade Python concurrency assignments (threads, processes, Queue, Lock, Pool, Pipe). "
        "Student code runs in sandboxed processes; checks judge what was recorded there.",
        epilog="Exit status: 0 all good, 1 a submission lost points, 2 the grader could not run.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND")
    verbs.required = True
    _add_list(verbs, commands)
    _add_check(verbs, commands)
    _add_new(verbs, commands)
    _add_gradescope(verbs, commands)
    _add_grade(verbs, commands)
    _add_merge(verbs, commands)
    _add_validate(verbs, commands)
    _add_demo(verbs, commands)
    _add_mutants(verbs, commands)
    return parser


def _add_list(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser("list", help="list the bundled assignments", description="List the bundled assignments.")
    p.set_defaults(func=commands["list"])


def _add_check(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "check",
        help="grade one submission",
        description="Grade one submission and print what passed, what failed and why: each check's line as it "
        "finishes (on a terminal with what is still running), then each problem once with the checks it cost, the "
        "score and the sandbox. NO_COLOR and FORCE_COLOR are honoured. "
        "ASSIGNMENT is a bundled assignment's name (see `grader list`) or the path of an assignment folder. "
        "SUBMISSION is the student's .py file (any name), a notebook (.ipynb), a .zip, or a folder holding the "
        "assignment's module (found by its name, a renamed or nested copy of it, or the folder's only .py file).",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("submission", metavar="SUBMISSION")
    p.add_argument("--json", metavar="PATH", help="also write Gradescope's results.json to PATH")
    p.add_argument("--result", metavar="PATH", help="also write the grader's own result model (JSON) to PATH")
    p.add_argument("--html", metavar="PATH", help="also write the report as a self-contained HTML page to PATH")
    p.add_argument("--student", metavar="NAME", help="the student's name, shown in reports")
    p.add_argument("--show-output", action="store_true", help="show what the program printed for failed checks")
    p.add_argument(
        "--no-colour", "--no-color", action="store_true", help="no colour even on a terminal (as NO_COLOR=1 does)"
    )
    p.add_argument(
        "-q", "--quiet", action="count", default=0, help="print the score line only (or why it could not grade)"
    )
    p.add_argument(
        "-v", "--verbose", action="count", default=0, help="also list the sandbox's protections, not just their number"
    )
    p.add_argument(
        "--prairielearn", metavar="PATH", help="also write PrairieLearn's external-grader results.json to PATH"
    )
    p.add_argument(
        "--github", action="store_true", help="also set the GitHub Classroom runner result (step output 'result')"
    )
    p.add_argument("--junit", metavar="PATH", help="also write JUnit XML to PATH (CodeGrade: $CG_JUNIT_XML_LOCATION)")
    _add_check_workers(
        p, "default: one per CPU, at most the number of checks, or one where this assignment's checks took under "
        "a second in all the last time `grader check` ran them here; side by side, longest first where that ended "
        "sooner than their own order",
    )
    _add_unsafe(p)
    p.set_defaults(func=commands["check"])


def _add_unsafe(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--unsafe-no-sandbox",
        action="store_true",
        help="as root, grade even where student code cannot get a sandbox uid of its own and would run as root "
        "with every capability (refused otherwise, exit status 2); every report then says so",
    )


def _add_new(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "new",
        help="scaffold a new assignment folder",
        description="Create NAME/ (assignment.toml, student README, starter, a check file that works) and "
        "reference/NAME.py (a solution with full marks) inside --dir, as a starting point for your own assignment.",
    )
    p.add_argument("name", metavar="NAME", help="the assignment's name, also the module students submit (NAME.py)")
    p.add_argument(
        "--dir", default=".", metavar="DIR", help="where to create it, made if missing (default: the current folder)"
    )
    p.set_defaults(func=commands["new"])


def _add_gradescope(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "gradescope",
        help="build a Gradescope autograder zip",
        description="Build the autograder zip for a Gradescope programming assignment: setup.sh and run_autograder "
        "at its root, the grader as a wheel and the assignment's checks (no reference solution).",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT", help="a bundled assignment's name or an assignment folder")
    p.add_argument("-o", "--output", metavar="ZIP", default="autograder.zip", help="where to write the zip")
    p.set_defaults(func=commands["gradescope"])


def _add_grade(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "grade",
        help="grade a whole class",
        description="Grade every submission in SUBMISSIONS and write a class summary (index.html), one HTML report, "
        "Gradescope JSON and result JSON per student, and a gradebook (grades.csv) into DIR. "
        "SUBMISSIONS is a folder with one folder or .py file per student, a .zip of such a folder, "
        "or a Canvas or Gradescope 'Download submissions' export. "
        "Exit status: 0 every submission was graded (whatever the scores), 1 some had no gradable file or could "
        "not be graded, 2 the batch could not run.",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT")
    p.add_argument("submissions", metavar="SUBMISSIONS")
    p.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder for the reports (created if missing); a previous run's reports there are replaced, "
        "and a folder holding other files is refused",
    )
    _add_force(p)
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
    add_canvas_options(p)
    _add_unsafe(p)
    p.set_defaults(func=commands["grade"])


def _add_validate(verbs: Verbs, commands: Mapping[str, Command]) -> None:
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
    p.set_defaults(func=commands["validate"])


def _add_merge(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "merge",
        help="merge the result folders of grader grade --shard",
        description="Combine the result folders that `grader grade --shard I/N` wrote (all N of them, one class, "
        "one assignment) into one class summary, gradebook and set of student reports in DIR, the same as one "
        "unsharded `grader grade` writes. Exit status as for grade.",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="the --out folders of the shards")
    p.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder for the merged reports (created if missing); a previous run's reports there are replaced",
    )
    _add_force(p)
    add_canvas_options(p)
    p.set_defaults(func=commands["merge"])


def _add_demo(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "demo",
        help="grade the bundled sample class",
        description="Grade the sample class bundled in examples/ (one folder per assignment, one file per student) "
        "and write the reports, to see what instructors get.",
    )
    p.add_argument("--out", metavar="DIR", default="reports", help="folder for the reports (default: reports)")
    _add_jobs(p)
    _add_check_workers(p, "default: the CPUs left by -j, at least 1")
    p.set_defaults(func=commands["demo"])


def _add_mutants(verbs: Verbs, commands: Mapping[str, Command]) -> None:
    p = verbs.add_parser(
        "mutants",
        help="prove the checks: grade mutants of the reference solution",
        description="Put one classic concurrency mistake at a time into the reference solution (a lock removed or "
        "made per worker, a join moved or dropped, Process for Thread, a sentinel not sent, results reordered, a "
        "parameter replaced by a constant, ...; docs/authoring.md lists them, and how to add your own), grade each "
        "mutant RUNS times like a student's submission, and report per mutant: killed on every run (by which checks), "
        "killed only sometimes (a check that catches it by luck), survived (no check looks at what it breaks), or "
        "equivalent (marked in assignment.toml with a reason). "
        "Exit status: 0 every other mutant was killed on every run, 1 one survived or was killed only sometimes, "
        "2 it could not run (the reference loses points, a bad path or config).",
    )
    p.add_argument("assignment", metavar="ASSIGNMENT", help="a bundled assignment's name or an assignment folder")
    p.add_argument(
        "--reference", metavar="FILE",
        help="the solution to mutate (default: reference/<module> beside the folder, as `grader validate` finds it); "
        "it must get full marks",
    )
    p.add_argument(
        "--runs", metavar="N", type=int, default=3,
        help="gradings of each mutant (default: 3). The first grades every check and names each check that kills the "
        "mutant; a mutant is killed on a run as soon as one check loses points, so the later runs grade those checks "
        "first and stop at the first check that loses points. A run where no check loses points grades every check, so "
        "'killed only sometimes' and 'survived' are the same as with full gradings",
    )
    p.add_argument(
        "--full-runs", action="store_true",
        help="grade every check on every run (slower: shows on how many runs each check kills each mutant)",
    )
    p.add_argument("--html", metavar="PATH", help="also write the report as a self-contained HTML page to PATH")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    _add_jobs(p)
    _add_unsafe(p)
    p.set_defaults(func=commands["mutants"])


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--force",
        action="store_true",
        help="write into --out even when it holds files grader did not write (they are kept, never removed)",
    )


def _add_jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-j",
        "--jobs",
        metavar="N",
        type=int,
        default=None,
        help="CPUs' worth of submissions graded at the same time (default: the number of CPUs); submissions that "
        "wait part of the time (sleeps, a deadlock running into its time limits) make room for more while a CPU is "
        "idle, up to 4N at once",
    )


def _add_check_workers(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument(
        "--check-workers",
        metavar="K",
        type=int,
        default=None,
        help=f"checks of one submission run at the same time, each in its own sandbox ({default}; 1: one after another)",
    )
