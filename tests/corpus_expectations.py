"""Read what a corpus file is expected to get: full marks, or which checks must lose points."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_HEADER = re.compile(r"#\s*expect-(fail|timeout|deadlock):\s*(.+)")


@dataclass(frozen=True)
class Expectation:
    path: Path
    correct: bool
    failing: tuple[str, ...]
    timing_out: tuple[str, ...]
    deadlocking: tuple[str, ...] = ()
    """Checks (among ``timing_out``) whose run the kernel must prove deadlocked, ending it before its time limit."""


def expectation(path: Path) -> Expectation:
    failing: list[str] = []
    timing_out: list[str] = []
    deadlocking: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines()[:5]:
        match = _HEADER.match(line.strip())
        if match:
            names = match.group(2).split()
            {"fail": failing, "timeout": timing_out, "deadlock": deadlocking}[match.group(1)].extend(names)
    correct = path.parent.name == "correct"
    if not correct and not (failing or timing_out):
        raise ValueError(f"{path}: a buggy corpus file must start with '# expect-fail: test_...'")
    return Expectation(path, correct, tuple(failing), tuple(timing_out), tuple(deadlocking))
