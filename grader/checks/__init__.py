"""The assignment author's toolkit for writing checks. Runs in the pytest process.

A check is a pytest function of an assignment's ``test_*.py`` that takes the
``submission`` fixture (a :class:`Submission`), asks it for runs of the
student's code, and judges their evidence (:mod:`grader.evidence`), failing
with :func:`fail` or :func:`expect`. Everything an author needs besides the
evidence is here:

- saying what went wrong: :func:`expect`, :func:`fail`, :class:`CheckFailed`,
  :class:`CheckTimedOut` (:mod:`grader.checks.expect`);
- running the student's code: :class:`Submission` (:mod:`grader.checks.submission`);
- exact comparisons and their words: :func:`same`, :func:`same_items`,
  :func:`first_difference`, :func:`line_problems`, :func:`sequence_problem`,
  :func:`brief` (:mod:`grader.checks.compare`);
- ready-made checks several assignments share: :func:`expect_no_import_side_effects`,
  :func:`expect_children_joined`, :func:`expect_threads_joined`, :func:`expect_greeting`,
  :func:`expect_sleeps_for_delay`, :func:`expect_hello_calls`,
  :func:`expect_random_delays`, :data:`GREETING`, :func:`expect_no_lock_order_cycle`
  (:mod:`grader.checks.common`).
"""

from grader.checks.common import (
    GREETING,
    expect_children_joined,
    expect_greeting,
    expect_hello_calls,
    expect_no_import_side_effects,
    expect_no_lock_order_cycle,
    expect_random_delays,
    expect_sleeps_for_delay,
    expect_threads_joined,
)
from grader.checks.compare import brief, first_difference, line_problems, same, same_items, sequence_problem
from grader.checks.expect import CheckFailed, CheckTimedOut, expect, fail
from grader.checks.submission import Submission

__all__ = [
    "GREETING",
    "CheckFailed",
    "CheckTimedOut",
    "Submission",
    "brief",
    "expect",
    "expect_children_joined",
    "expect_greeting",
    "expect_hello_calls",
    "expect_no_import_side_effects",
    "expect_no_lock_order_cycle",
    "expect_random_delays",
    "expect_sleeps_for_delay",
    "expect_threads_joined",
    "fail",
    "first_difference",
    "line_problems",
    "same",
    "same_items",
    "sequence_problem",
]
