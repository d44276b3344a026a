"""concurrency-grader: grade Python concurrency assignments from recorded evidence.

The public surface for people who write checks:

- :class:`~grader.submission.Submission`, the ``submission`` fixture's type;
- :class:`~grader.evidence.Run`, what one sandboxed run recorded;
- :func:`~grader.checks.fail`, :func:`~grader.checks.expect` and
  :class:`~grader.checks.CheckFailed` to report a problem to the student;
- :class:`~grader.results.SubmissionResult`, the result model exporters read.
"""

from .checks import CheckFailed, CheckTimedOut, expect, fail
from .evidence import Run
from .results import CheckResult, Status, SubmissionResult
from .submission import Submission

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
