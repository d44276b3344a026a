"""What a fresh interpreter imports: for the tests of code that every sandbox run starts again."""

from __future__ import annotations

import ast
import subprocess
import sys


def modules_loaded(code: str, setup: str = "") -> set[str]:
    """The modules a fresh ``python -I -S`` loads while it runs ``code``, beyond those of its start-up and ``setup``."""
    wrapper = f"import sys\n{setup}\nbefore = set(sys.modules)\n{code}\nprint(sorted(set(sys.modules) - before))"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", wrapper], capture_output=True, text=True, check=True)
    return set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
