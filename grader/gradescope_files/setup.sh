#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image
# (the zip is unpacked in /autograder/source). It installs the grader into its
# own virtual environment, /autograder/venv, from the wheel in the zip; pip
# fetches the grader's dependencies from PyPI. Use Gradescope's Ubuntu 22.04
# (or newer) base image: the grader needs Python 3.10 or newer.
#
# GRADER_AUTOGRADER_ROOT (default /autograder) moves the whole layout, for tests;
# GRADER_PIP_OPTIONS adds options to pip (for example an offline --find-links).
set -euo pipefail

ROOT="${GRADER_AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
PYTHON="${GRADER_PYTHON:-python3}"

if ! "$PYTHON" -m venv "$VENV"; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv python3-pip
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC2086  # GRADER_PIP_OPTIONS is a list of options
"$VENV/bin/python" -m pip install --disable-pip-version-check ${GRADER_PIP_OPTIONS:-} "$SOURCE"/wheels/*.whl
"$VENV/bin/python" -m grader.grading.autograder harden --root "$ROOT"
"$VENV/bin/python" -m grader.grading.autograder check-install --root "$ROOT"
