"""concurrency-grader: grade Python concurrency assignments from recorded evidence.

The public surface for people who write checks:

- :class:`~grader.checks.submission.Submission`, the ``submission`` fixture's type;
- :class:`~grader.evidence.run.Run`, what one sandboxed run recorded;
- :func:`~grader.checks.expect.fail`, :func:`~grader.checks.expect.expect` and
  :class:`~grader.checks.expect.CheckFailed` to report a problem to the student;
- :class:`~grader.model.results.SubmissionResult`, the result model exporters read.
"""

from grader.checks.expect import CheckFailed, CheckTimedOut, expect, fail
from grader.checks.submission import Submission
from grader.evidence.run import Run
from grader.model.results import CheckResult, Status, SubmissionResult

__version__ = "0.1.0"

__all__ = [
    "CheckFailed",
    "CheckResult",
    "CheckTimedOut",
    "Run",
    "Status",
    "Submission",
    "SubmissionResult",
    "__version__",
    "expect",
    "fail",
]
