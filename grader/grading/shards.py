"""Grade a class in slices on many machines, then merge the result folders into one.

``grader grade --shard I/N`` grades the I-th of N slices of the class: the
students sorted by name, every N-th one starting at the I-th (so slices differ
in size by one at most, and the same class always gives the same slices
whatever machine or Python runs them). Every ``grader grade`` (sharded or not)
writes ``batch.json`` into its result folder: the assignment, the shard, a
fingerprint of the whole class and, per student, its place in the class and the
slug of its files. ``grader merge DIR... --out DIR`` reads these and the
``students/<slug>.result.json`` files and writes the reports of the whole class,
exactly as one unsharded run writes them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.exporters.files import write_atomic
from grader.model.assignment import Assignment, AssignmentError, find_assignment
from grader.model.results import SubmissionResult

__all__ = [
    "MANIFEST",
    "Shard",
    "ShardError",
    "class_fingerprint",
    "parse_shard",
    "read_shards",
    "select_shard",
    "write_manifest",
]

MANIFEST = "batch.json"
FORMAT = 1


class ShardError(ValueError):
    """A shard specification or a set of result folders that cannot be used (one line for the user)."""


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/3"`` -> ``(2, 3)``; raises :class:`ShardError` unless ``1 <= I <= N``."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise ShardError(f"--shard takes I/N, the I-th of N slices (for example 2/3), not {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard I/N needs 1 <= I <= N (slices are numbered from 1), got {text!r}")
    return index, count


def select_shard(names: Sequence[str], index: int, count: int) -> list[int]:
    """Positions in ``names`` that belong to slice ``index`` of ``count``: round robin over the sorted names."""
    order = sorted(range(len(names)), key=lambda i: (names[i], i))
    return sorted(order[k] for k in range(index - 1, len(order), count))


def class_fingerprint(names: Sequence[str]) -> str:
    """Identifies a class by its students, in order (the same for every shard of one class)."""
    return hashlib.sha256("\n".join(names).encode("utf-8")).hexdigest()[:16]


def write_manifest(
    out: Path,
    assignment: Assignment,
    *,
    shard: tuple[int, int],
    class_names: Sequence[str],
    positions: Sequence[int],
    slugs: Sequence[str],
    source: str,
    files: Sequence[str] = (),
) -> None:
    """Write ``batch.json``: what a later ``grader merge`` needs to know about this folder.

    ``files`` are the files this run wrote into ``out`` (relative paths): the next run into the
    same folder removes them (:mod:`grader.grading.outdir`).
    """
    data = {
        "format": FORMAT,
        "assignment": assignment.name,
        "assignment_path": str(assignment.path),
        "title": assignment.title,
        "source": source,
        "shard": list(shard),
        "class_size": len(class_names),
        "class_fingerprint": class_fingerprint(class_names),
        "students": [
            {"position": p, "student": class_names[p], "slug": s} for p, s in zip(positions, slugs, strict=True)
        ],
        "files": list(files),
    }
    path = Path(out) / MANIFEST
    write_atomic(path, json.dumps(data, indent=1))


@dataclass
class Shard:
    """One result folder as ``grader merge`` reads it."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def label(self) -> str:
        index, count = self.manifest["shard"]
        return f"{self.folder} (shard {index}/{count})"


def _read_manifest(folder: Path) -> Shard:
    if not folder.exists():
        raise ShardError(f"result folder not found: {folder}")
    if not folder.is_dir():
        raise ShardError(f"{folder} is not a folder (merge takes the --out folders of grader grade)")
    path = folder / MANIFEST
    if not path.is_file():
        raise ShardError(f"{folder} is not a result folder of grader grade: it has no {MANIFEST}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        index, count = (int(x) for x in data["shard"])
        for key in ("assignment", "class_fingerprint", "students", "class_size"):
            data[key]  # noqa: B018 - presence check
        for entry in data["students"]:
            int(entry["position"]), str(entry["slug"]), str(entry["student"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ShardError(f"{path} is unreadable or incomplete: {exc}") from None
    if data.get("format") != FORMAT:
        raise ShardError(f"{path} has format {data.get('format')!r}; this grader reads format {FORMAT}")
    data["shard"] = [index, count]
    return Shard(folder, data)


def _load_assignment(manifest: dict[str, Any]) -> Assignment:
    for candidate in (manifest.get("assignment_path"), manifest["assignment"]):
        if not candidate:
            continue
        try:
            found = find_assignment(str(candidate))
        except AssignmentError:
            continue
        if found.name == manifest["assignment"]:
            return found
    raise ShardError(
        f"assignment {manifest['assignment']!r} not found (neither bundled nor at {manifest.get('assignment_path')})"
    )


def read_shards(folders: Sequence[Path]) -> tuple[Assignment, list[SubmissionResult], str]:
    """The assignment, every result in the order of the whole class, and the class's source line.

    Raises :class:`ShardError` for a missing or foreign folder, folders of
    different assignments or classes, overlapping or missing shards, and
    unreadable results.
    """
    if not folders:
        raise ShardError("merge needs at least one result folder")
    shards = [_read_manifest(Path(f)) for f in folders]
    first = shards[0]
    for other in shards[1:]:
        if other.manifest["assignment"] != first.manifest["assignment"]:
            raise ShardError(
                f"the folders grade different assignments: {first.manifest['assignment']} in {first.folder}, "
                f"{other.manifest['assignment']} in {other.folder}"
            )
    for other in shards[1:]:
        if (other.manifest["class_fingerprint"], other.manifest["class_size"]) != (
            first.manifest["class_fingerprint"],
            first.manifest["class_size"],
        ):
            raise ShardError(
                f"the folders come from different classes (different students): {first.folder} and {other.folder}; "
                "merge the shards of one `grader grade --shard` run"
            )
        if other.manifest["shard"][1] != first.manifest["shard"][1]:
            raise ShardError(
                f"the folders were sliced differently: {first.label} and {other.label}; merge shards of one split"
            )
    seen: dict[int, Shard] = {}
    for shard in shards:
        index = shard.manifest["shard"][0]
        if index in seen:
            raise ShardError(f"overlapping shards: {seen[index].label} and {shard.label} hold the same students")
        seen[index] = shard
    count = first.manifest["shard"][1]
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing:
        raise ShardError(f"shard(s) {', '.join(missing)} missing: merge the result folders of all {count} shards")
    placed: dict[int, SubmissionResult] = {}
    owner: dict[int, Shard] = {}
    for shard in shards:
        for entry in shard.manifest["students"]:
            position = int(entry["position"])
            if position in owner:
                raise ShardError(
                    f"overlapping shards: {entry['student']} is in {owner[position].label} and in {shard.label}"
                )
            path = shard.folder / "students" / f"{entry['slug']}.result.json"
            try:
                result = SubmissionResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ShardError(f"cannot read {entry['student']}'s result {path}: {exc}") from None
            placed[position] = result
            owner[position] = shard
    size = int(first.manifest["class_size"])
    if sorted(placed) != list(range(size)):
        raise ShardError(f"the shards hold {len(placed)} of the class's {size} students: a result folder is incomplete")
    return _load_assignment(first.manifest), [placed[i] for i in range(size)], str(first.manifest.get("source", ""))
