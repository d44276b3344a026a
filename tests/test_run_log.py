"""GRADER_RUN_LOG: every sandbox run of a grading's checks writes its action, for benchmarks/cpu_floor.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_sandbox_run_of_a_grading_writes_its_action(tmp_path: Path, grader_env: dict[str, str]) -> None:
    log = tmp_path / "runs.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "grader", "check", "dining_philosophers", str(ROOT / "reference" / "philosophers.py")],
        capture_output=True, text=True, env={**grader_env, "GRADER_RUN_LOG": str(log)}, timeout=300,
    )
    assert "Score: 16/16" in done.stdout, done.stdout[-3000:]
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    labels = {entry["label"] for entry in entries}
    assert {"dine(5, 3)", "dine(3, 2)", "dine()"} <= labels, labels
    assert "import philosophers" not in labels  # the import check judges the import of dine()'s run
    assert {"kind": "call", "func": "dine", "args": [5, 3], "kwargs": {"$dict": []}} in [e["action"] for e in entries]

