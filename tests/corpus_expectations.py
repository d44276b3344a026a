"""Read what a corpus file is expected to get: full marks, or which checks must lose points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADER = re.compile(r"#\s*expect-(fail|timeout|deadlock):\s*(.+)")
_EXACT = "# expect-only-these"
"""A header line saying that every check not named in ``expect-fail``/``expect-timeout`` keeps its points."""


@dataclass(frozen=True)
class Expectation:
    path: Path
    correct: bool
    failing: tuple[str, ...]
    timing_out: tuple[str, ...]
    deadlocking: tuple[str, ...] = ()
    """Checks (among ``timing_out``) whose run the kernel must prove deadlocked, ending it before its time limit."""
    exact: bool = False
    """Every other check keeps its points (the header has :data:`_EXACT`): for a verdict that must not depend on luck."""


def expectation(path: Path) -> Expectation:
    failing: list[str] = []
    timing_out: list[str] = []
    deadlocking: list[str] = []
    exact = False
    for line in path.read_text(encoding="utf-8").splitlines()[:5]:
        exact = exact or line.strip() == _EXACT
        match = _HEADER.match(line.strip())
        if match:
            names = match.group(2).split()
            {"fail": failing, "timeout": timing_out, "deadlock": deadlocking}[match.group(1)].extend(names)
    correct = path.parent.name == "correct"
    if not correct and not (failing or timing_out):
        raise ValueError(f"{path}: a buggy corpus file must start with '# expect-fail: test_...'")
    return Expectation(path, correct, tuple(failing), tuple(timing_out), tuple(deadlocking), exact)
