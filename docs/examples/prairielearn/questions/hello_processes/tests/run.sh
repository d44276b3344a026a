#!/bin/sh
# PrairieLearn's external-grader entrypoint for this question: grade the file
# the student submitted (/grade/student/hello_processes.py) and write
# /grade/results/results.json. A submission without the file or with a syntax
# error is reported as ungradable (it does not use up an attempt).
# GRADE_ROOT stands in for /grade when the script is tried outside PrairieLearn.
GRADE="${GRADE_ROOT:-/grade}"
mkdir -p "$GRADE/results"
grader check hello_processes "$GRADE/student" --prairielearn "$GRADE/results/results.json" --no-colour
# Exit status 1 only says the submission lost points; results.json says the rest.
exit 0
