"""Exporters: each turns the one result model into one output format.

- :mod:`.terminal`: the text ``grader check`` prints;
- :mod:`.gradescope`: Gradescope's ``results.json``;
- :mod:`.prairielearn`: PrairieLearn's external-grader ``results.json``;
- :mod:`.github`: the GitHub Classroom autograding runner result;
- :mod:`.junit`: JUnit XML (CodeGrade, CI);
- :mod:`.canvas`: a Canvas gradebook CSV of many results.
"""

from grader.exporters.canvas import canvas_csv, write_canvas_csv
from grader.exporters.github import encode_runner_result, to_github_classroom, write_github_output
from grader.exporters.gradescope import to_gradescope, write_gradescope
from grader.exporters.junit import to_junit_xml, write_junit
from grader.exporters.prairielearn import prairielearn_ungradable, to_prairielearn, write_prairielearn
from grader.exporters.terminal import render_text

__all__ = [
    "canvas_csv",
    "encode_runner_result",
    "prairielearn_ungradable",
    "render_text",
    "to_github_classroom",
    "to_gradescope",
    "to_junit_xml",
    "to_prairielearn",
    "write_canvas_csv",
    "write_github_output",
    "write_gradescope",
    "write_junit",
    "write_prairielearn",
]
