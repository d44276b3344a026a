"""Diagnosis of hangs and leftovers: where every process was blocked, and which pattern that is.

Runs in the pytest process on stacks the sandbox collected.
"""

from grader.diagnosis.report import describe_hang, describe_leftovers

__all__ = ["describe_hang", "describe_leftovers"]
