"""The sandbox host: runs the student's code in a fresh, contained process tree and reads back plain data.

Runs in the pytest process (the checking side). Nothing in it judges; it prepares a private
folder, launches, waits, collects stacks, kills the tree and reads back what the run left.
"""

from grader.sandbox.containment import Isolation, Limits
from grader.sandbox.readback import safe_text
from grader.sandbox.sandbox import RawRun, Sandbox

__all__ = ["Isolation", "Limits", "RawRun", "Sandbox", "safe_text"]
