#!/usr/bin/env bash
# One entry point for people and CI. Needs only Python >= 3.10 (and bash).
#
#   ./run.sh demo              install the grader alone into .venv-demo, grade the sample class -> reports/index.html
#   ./run.sh test [ARGS...]    install with the test tools into .venv (+ Chromium when root on Debian), run the tests
#   ./run.sh test-extended     only the tests marked `extended` (second proofs CI leaves out: forgeries without root, mutants, cluster examples)
#   ./run.sh test-pythons      the test suite on every Python 3.10+ found (pyenv versions included)
#   ./run.sh test-served       the sandbox's own tests with every sandbox a fork of the fork server (as `grader grade` runs them)
#   ./run.sh stress [ARGS]     grade every corpus entry 20 times, 2 at a time (benchmarks/stress.py --help)
#   ./run.sh lint              ruff and mypy
#
# PYTHON=/path/to/python selects the interpreter (default: python3); each gets its own venvs.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"

# venv_for PYTHON [dev]: a venv with the grader installed (editable) and its runtime dependencies only
# (.venv-demo, about 55 MB), or with the test and lint tools too (.venv, about 320 MB; "dev").
venv_for() {
    local python="$1"
    local kind="${2:-}"
    local version
    version="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    local venv=".venv" target=".[dev]"
    if [ "$kind" != "dev" ]; then venv=".venv-demo" target="."; fi
    if [ "$python" != "python3" ]; then venv="$venv-$version"; fi
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
    fi
    if [ ! -f "$venv/.installed" ] || [ pyproject.toml -nt "$venv/.installed" ]; then
        "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
        "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$target"
        touch "$venv/.installed"
    fi
    echo "$venv"
}

ensure_chromium() {
    if [ -x /usr/bin/chromium ]; then return 0; fi
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Debian's chromium for the browser test..." >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
            || echo "chromium could not be installed: the browser test will be skipped" >&2
    else
        echo "no /usr/bin/chromium: the browser test will be skipped" >&2
    fi
}

cmd="${1:-help}"
shift || true
case "$cmd" in
    demo)
        venv="$(venv_for "$PYTHON")"
        exec "$venv/bin/grader" demo "$@"
        ;;
    test)
        venv="$(venv_for "$PYTHON" dev)"
        ensure_chromium
        # Most tests wait on child processes and time limits rather than compute: one worker more than
        # the two CPUs of the reference machine keeps them busy (TEST_WORKERS overrides).
        exec "$venv/bin/python" -m pytest -n "${TEST_WORKERS:-3}" "$@"
        ;;
    test-extended)
        exec "$0" test -m extended "$@"
        ;;
    test-served)
        # `grader grade` starts its sandboxes from a fork server (grader/sandbox/fork_server.py); the tests of
        # the sandbox itself, its protections and its evidence run here with every sandbox started that way.
        if [ "$#" -eq 0 ]; then
            set -- tests/test_sandbox.py tests/test_sandbox_namespaces.py tests/test_hostile.py tests/test_launch_status.py \
                tests/test_kernel_witness.py tests/test_deadlock_proof.py tests/test_forgery.py tests/test_evidence_stream.py \
                tests/test_fail_closed.py tests/test_drivers.py tests/test_hang_diagnostics.py
        fi
        GRADER_TEST_SANDBOX_SERVER=1 exec "$0" test -m "not extended" "$@"
        ;;
    test-pythons)
        found=0
        for py in python3 ~/.pyenv/versions/3.1[0-9]*/bin/python3 /usr/bin/python3.1[0-9]; do
            [ -x "$(command -v "$py" || true)" ] || continue
            "$py" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || continue
            echo "=== $("$py" --version)"
            PYTHON="$py" "$0" test "$@"
            found=$((found + 1))
        done
        echo "ran the suite on $found Python version(s)"
        ;;
    stress)
        venv="$(venv_for "$PYTHON" dev)"
        exec "$venv/bin/python" benchmarks/stress.py "$@"
        ;;
    lint)
        venv="$(venv_for "$PYTHON" dev)"
        "$venv/bin/ruff" check grader tests
        "$venv/bin/mypy"
        ;;
    *)
        sed -n '2,12p' "$0"
        ;;
esac
