"""concurrency-grader: grade Python concurrency assignments from recorded evidence.

The folders say which process each module runs in:

- :mod:`grader.grading`: the controller (``grader check``/``grade``): starts pytest, schedules a
  class, reads back result files; it never runs a check or student code;
- :mod:`grader.plugin`, :mod:`grader.checks`, :mod:`grader.evidence`, :mod:`grader.diagnosis`: the
  pytest process that runs the checks and judges recorded evidence;
- :mod:`grader.sandbox`: the sandbox host, in the pytest process, that runs student code in a
  contained process tree and reads back plain data;
- :mod:`grader.inside`: the code that runs in the student's processes, importing nothing of grader;
- :mod:`grader.model` and :mod:`grader.processes`: plain data and process handling every tier uses;
- :mod:`grader.exporters`: one output format each over the one result model.

Assignment authors import from :mod:`grader.checks` and :mod:`grader.evidence`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
