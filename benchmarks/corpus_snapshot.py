"""Grade every corpus entry once through the CLI and write, or compare, the verdicts.

    python benchmarks/corpus_snapshot.py --write before.json        # grade the corpus once
    python benchmarks/corpus_snapshot.py --write after.json
    python benchmarks/corpus_snapshot.py --compare before.json after.json
    python benchmarks/corpus_snapshot.py --write part.json pool_map locked_counter/buggy

A verdict is, per check, its status, points and message (numbers masked: pids and times
differ between runs). It runs ``python -m grader grade`` on each corpus folder, so it
grades with whatever ``grader`` package the interpreter imports (PYTHONPATH selects
another checkout). Used to show that a change of the code's shape changed no grade.
Exit status of --compare: 0 identical, 1 some verdict differs.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
NUMBER = re.compile(r"\d+(\.\d+)?")


def _verdict(check: dict[str, object]) -> list[object]:
    message = NUMBER.sub("N", str(check.get("message") or ""))
    return [check["status"], check["points"], message, NUMBER.sub("N", json.dumps(check.get("diagnostics")))]


def grade_corpus(jobs: int, only: list[str]) -> dict[str, dict[str, list[object]]]:
    verdicts: dict[str, dict[str, list[object]]] = {}
    for folder in sorted(CORPUS.glob("*/*")):
        if folder.name not in ("correct", "buggy") or not any(folder.glob("*.py")):
            continue
        if only and f"{folder.parent.name}/{folder.name}" not in only and folder.parent.name not in only:
            continue
        assignment = folder.parent.name
        with tempfile.TemporaryDirectory() as out:
            cmd = [sys.executable, "-m", "grader", "grade", assignment, str(folder), "--out", out, "-j", str(jobs)]
            print("grading", folder.relative_to(ROOT), file=sys.stderr, flush=True)
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)
            for result in sorted(Path(out).rglob("*.result.json")):
                data = json.loads(result.read_text())
                key = f"{assignment}/{folder.name}/{result.name.removesuffix('.result.json')}"
                verdicts[key] = {c["id"]: _verdict(c) for c in data["checks"]}
    return verdicts


def compare(before: dict[str, dict[str, list[object]]], after: dict[str, dict[str, list[object]]]) -> int:
    differing = 0
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        differing += 1
        print(f"DIFFERS {key}")
        for check in sorted(set(a or {}) | set(b or {})):
            if (a or {}).get(check) != (b or {}).get(check):
                print(f"  {check}:\n    before {(a or {}).get(check)}\n    after  {(b or {}).get(check)}")
    print(f"{len(set(before) | set(after))} entries, {differing} differing")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="grade the corpus and write the verdicts here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("only", nargs="*", help="corpus folders to grade (ASSIGNMENT or ASSIGNMENT/buggy); default all")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        return compare(before, after)
    if not args.write:
        parser.error("give --write FILE or --compare BEFORE AFTER")
    args.write.write_text(json.dumps(grade_corpus(args.jobs, args.only), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
