"""Archives and LMS exports: safe extraction, and reading who submitted what.

Everything here runs on the trusted side, on files a class handed in, so an
archive is treated as hostile until proven otherwise:

- :func:`safe_extract` checks every entry *before* writing anything: a name
  that is absolute, has a drive letter, a ``..`` component, a NUL byte, or
  resolves outside the destination is refused, and so are links, devices and
  encrypted entries; the declared total size and the number of entries are
  capped. While writing, the bytes actually produced are counted too, so an
  entry that lies about its size is stopped at the cap. A refused archive
  raises :class:`ArchiveError` and leaves nothing outside the destination.
- :func:`read_canvas_export` groups the flat files of Canvas's "Download
  submissions" zip (``name_userid_submissionid_filename``, with ``_LATE``
  after the name for late work) into one folder per student.
- :func:`read_gradescope_export` reads ``submission_metadata.yml`` of
  Gradescope's "Download submissions" export (one folder per submission) with
  a small reader for the YAML subset that file uses, so no YAML library is
  needed.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = [
    "MAX_FILES",
    "MAX_TOTAL_BYTES",
    "ArchiveError",
    "LmsSubmission",
    "is_canvas_export",
    "parse_simple_yaml",
    "read_canvas_export",
    "read_gradescope_export",
    "safe_extract",
]

MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_FILES = 20_000
GRADESCOPE_METADATA = "submission_metadata.yml"
_CHUNK = 64 * 1024
_CANVAS_NAME = re.compile(r"^(?P<name>.+?)(?P<late>_LATE)?_(?P<user>\d+)_(?P<sub>\d+)_(?P<file>.+)$")
_CANVAS_RESUBMISSION = re.compile(r"^(?P<stem>.+)-\d+(?P<suffix>\.[A-Za-z0-9]+)$")


class ArchiveError(ValueError):
    """An archive could not be read, or was refused as unsafe."""


@dataclass(frozen=True)
class LmsSubmission:
    """One submission found in an LMS export: who, and where their files are."""

    student: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)


# -- safe extraction ---------------------------------------------------------------


def _entry_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "link" if stat.S_ISLNK(mode) else "special file"
    return "directory" if info.is_dir() else "file"


def _checked_target(name: str, root: Path) -> Path | None:
    """Where entry ``name`` lands under ``root``, or None for an entry that only names a folder."""
    if "\x00" in name:
        raise ArchiveError(f"refused entry {name!r}: its name contains a NUL byte")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise ArchiveError(f"refused entry {name!r}: an absolute path would land outside the extraction folder")
    parts = [p for p in PurePosixPath(posix).parts if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"refused entry {name!r}: '..' would land outside the extraction folder")
    if not parts:
        return None
    target = root.joinpath(*parts)
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        raise ArchiveError(f"refused entry {name!r}: it resolves outside the extraction folder")
    return target


def safe_extract(archive: Path, dest: Path, *, max_total_bytes: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES) -> Path:
    """Extract the zip ``archive`` into the new or empty folder ``dest``; return ``dest``.

    Raises :class:`ArchiveError` (and removes what it wrote into ``dest``) when
    the archive is unreadable or refused; nothing is ever written outside ``dest``.
    """
    archive = Path(archive)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ArchiveError(f"extraction folder {dest} is not empty")
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > max_files:
                raise ArchiveError(f"refused {archive.name}: {len(infos)} entries, more than the limit of {max_files}")
            declared = sum(i.file_size for i in infos)
            if declared > max_total_bytes:
                raise ArchiveError(
                    f"refused {archive.name}: it would unpack to {declared} bytes, more than the limit of {max_total_bytes}"
                )
            plan: list[tuple[zipfile.ZipInfo, Path | None]] = []
            for info in infos:
                kind = _entry_kind(info)
                if kind not in ("file", "directory"):
                    raise ArchiveError(f"refused entry {info.filename!r}: it is a {kind}, only files and folders are allowed")
                if info.flag_bits & 0x1:
                    raise ArchiveError(f"refused entry {info.filename!r}: it is encrypted")
                plan.append((info, _checked_target(info.filename, root)))
            try:
                _write_entries(zf, plan, root, max_total_bytes, archive.name)
            except BaseException:
                _empty(root)
                raise
    except zipfile.BadZipFile as exc:
        raise ArchiveError(f"{archive.name} is not a readable zip archive: {exc}") from None
    except (OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        if isinstance(exc, ArchiveError):
            raise
        raise ArchiveError(f"{archive.name} could not be extracted: {exc}") from None
    return dest


def _write_entries(
    zf: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, Path | None]], root: Path, limit: int, label: str
) -> None:
    written = 0
    for info, target in plan:
        if target is None:
            continue
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        parent = target.parent.resolve()
        if parent != root and root not in parent.parents:  # a folder on the way is not what it seems
            raise ArchiveError(f"refused entry {info.filename!r}: it resolves outside the extraction folder")
        with zf.open(info) as src, open(target, "xb") as out:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                if written > limit:
                    raise ArchiveError(f"refused {label}: it unpacks to more than the limit of {limit} bytes")
                out.write(chunk)


def _empty(folder: Path) -> None:
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# -- Canvas ------------------------------------------------------------------------


def _canvas_match(name: str) -> re.Match[str] | None:
    return _CANVAS_NAME.match(name)


def is_canvas_export(folder: Path) -> bool:
    """True when every visible file at the top of ``folder`` is named the way Canvas names them."""
    files = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]
    dirs = [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_dir() and p.name != "__MACOSX"]
    return bool(files) and not dirs and all(_canvas_match(p.name) for p in files)


def _original_name(filename: str, taken: set[str]) -> str:
    """Undo Canvas's ``-1``, ``-2`` suffix on resubmitted files when the plain name is free."""
    m = _CANVAS_RESUBMISSION.match(filename)
    if m:
        plain = m["stem"] + m["suffix"]
        if plain not in taken:
            return plain
    return filename


def read_canvas_export(folder: Path, workdir: Path, *, max_total_bytes: int = MAX_TOTAL_BYTES) -> list[LmsSubmission]:
    """One submission per Canvas user: their files, renamed back, in ``workdir/<name>_<userid>/``.

    A student who handed in a zip gets it extracted (safely) into their folder;
    if it is refused, the zip stays there unopened and ``metadata["archive_refused"]``
    says why, so that student's checks fail and the others are graded as usual.
    """
    groups: dict[tuple[str, str], list[tuple[re.Match[str], Path]]] = {}
    for path in sorted(folder.iterdir()):
        m = _canvas_match(path.name)
        if m is None or not path.is_file():
            continue
        groups.setdefault((m["name"], m["user"]), []).append((m, path))
    submissions = []
    for (name, user), entries in sorted(groups.items()):
        target = workdir / f"{name}_{user}"
        target.mkdir(parents=True)
        taken: set[str] = set()
        metadata: dict[str, Any] = {
            "lms": "canvas",
            "canvas_id": user,
            "canvas_submission_id": entries[0][0]["sub"],
            "late": any(m["late"] for m, _ in entries),
        }
        for m, path in entries:
            filename = Path(m["file"]).name
            if filename in ("", ".", "..") or filename.startswith("."):
                filename = path.name
            if filename.lower().endswith(".zip"):
                try:
                    safe_extract(path, target / Path(filename).stem, max_total_bytes=max_total_bytes)
                    _hoist_single_folder(target / Path(filename).stem, target)
                    continue
                except ArchiveError as exc:
                    metadata["archive_refused"] = str(exc)
            original = _original_name(filename, taken)
            taken.add(original)
            shutil.copyfile(path, target / original)
        files = [p for p in target.iterdir()]
        path_for_grading = files[0] if len(files) == 1 and files[0].suffix == ".py" else target
        submissions.append(LmsSubmission(student=name, path=path_for_grading, metadata=metadata))
    return submissions


def _hoist_single_folder(extracted: Path, target: Path) -> None:
    """Move what a student's own zip unpacked to into their folder (through one wrapping folder)."""
    inner = single_folder(extracted)
    for child in sorted(inner.iterdir()):
        if not (target / child.name).exists():
            shutil.move(str(child), str(target / child.name))
    shutil.rmtree(extracted, ignore_errors=True)


def single_folder(folder: Path, *, stop_at: str | None = None) -> Path:
    """Descend through folders that hold nothing but one folder (and OS litter).

    With ``stop_at`` (the assignment's module file), a folder holding that file
    is a submission and is not descended into: a class of one stays a class.
    """
    while True:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
        if len(entries) != 1 or not entries[0].is_dir() or entries[0].is_symlink():
            return folder
        if stop_at is not None and (entries[0] / stop_at).is_file():
            return folder
        folder = entries[0]


# -- Gradescope ----------------------------------------------------------------------


def read_gradescope_export(folder: Path) -> list[LmsSubmission]:
    """One submission per ``submission_<id>`` folder named in ``submission_metadata.yml``.

    The student is the submitter's name (names joined with " + " for a group);
    ids and e-mail addresses go into the metadata. Folders the metadata does not
    mention are graded under their folder name.
    """
    meta_path = folder / GRADESCOPE_METADATA
    try:
        data = parse_simple_yaml(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArchiveError(f"{meta_path}: cannot be read as Gradescope metadata: {exc}") from None
    if not isinstance(data, dict):
        raise ArchiveError(f"{meta_path}: expected one entry per submission folder")
    submissions = []
    seen: set[str] = set()
    for key, record in data.items():
        key = str(key)
        path = folder / key
        if "/" in key or key in ("", ".", "..") or not path.is_dir():
            continue
        seen.add(key)
        submitters = record.get(":submitters") if isinstance(record, dict) else None
        people = [s for s in submitters if isinstance(s, dict)] if isinstance(submitters, list) else []
        names = [str(p.get(":name") or p.get(":email") or p.get(":sid") or "") for p in people]
        names = [n for n in names if n]
        metadata: dict[str, Any] = {"lms": "gradescope", "gradescope_submission": key}
        if people:
            metadata["submitters"] = [
                {k.lstrip(":"): str(v) for k, v in p.items() if k in (":name", ":sid", ":email") and v is not None}
                for p in people
            ]
        if isinstance(record, dict) and record.get(":created_at"):
            metadata["created_at"] = str(record[":created_at"])
        submissions.append(LmsSubmission(student=" + ".join(names) or key, path=path, metadata=metadata))
    for path in sorted(folder.iterdir()):
        if path.is_dir() and path.name not in seen and not path.name.startswith(".") and path.name != "__MACOSX":
            submissions.append(
                LmsSubmission(student=path.name, path=path, metadata={"lms": "gradescope", "gradescope_submission": path.name})
            )
    return submissions


# -- a YAML subset ---------------------------------------------------------------------

_Line = tuple[int, str, int]  # indent, content, line number


def _strip_comment(text: str) -> str:
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and (i == 0 or text[i - 1] in " :-[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _scalar(text: str) -> Any:
    text = text.strip()
    if text.startswith("!"):  # a tag such as !ruby/object:BigDecimal: keep the value as text
        text = text.split(" ", 1)[1].strip() if " " in text else ""
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        body = text[1:-1]
        return re.sub(
            r"\\(u[0-9a-fA-F]{4}|.)",
            lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" else {"n": "\n", "t": "\t", "0": "\0"}.get(m[1], m[1]),
            body,
        )
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if text == "[]":
        return []
    if text == "{}":
        return {}
    return text


def _split_key(content: str) -> tuple[str, str] | None:
    """``key: value`` -> (key, value); None when the line is not a mapping entry."""
    if content[0] in "'\"":
        end = content.find(content[0], 1)
        if end > 0 and content[end + 1 : end + 2] == ":" and content[end + 2 : end + 3] in ("", " "):
            return content[1:end], content[end + 2 :].strip()
        return None
    start = 1 if content.startswith(":") else 0  # Ruby symbol keys (":name:") as Gradescope writes them
    for i in range(start, len(content)):
        if content[i] == ":" and (i + 1 == len(content) or content[i + 1] == " "):
            return content[:i], content[i + 1 :].strip()
    return None


def parse_simple_yaml(text: str) -> Any:
    """Parse the block-style YAML subset of ``submission_metadata.yml``.

    Supported: nested block mappings and sequences (including sequences at the
    same indent as their key, as Ruby writes them), plain and quoted scalars,
    tags (ignored), empty ``[]``/``{}``, and ``|``/``>`` block scalars (kept as
    text). Scalars stay strings, so ids keep their leading zeros. Anything else
    raises ``ValueError`` naming the line.
    """
    lines: list[_Line] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw.strip() in ("---", "...") or not raw.strip() or raw.lstrip().startswith("#"):
            continue
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise ValueError(f"line {number}: tab in indentation")
        lines.append((len(raw) - len(raw.lstrip(" ")), raw.strip(), number))
    if not lines:
        return None
    value, end = _parse_block(lines, 0, lines[0][0], text.splitlines())
    if end != len(lines):
        raise ValueError(f"line {lines[end][2]}: unexpected indentation")
    return value


def _parse_block(lines: list[_Line], i: int, indent: int, raw: list[str]) -> tuple[Any, int]:
    if lines[i][1] == "-" or lines[i][1].startswith("- "):
        return _parse_sequence(lines, i, indent, raw)
    return _parse_mapping(lines, i, indent, raw)


def _parse_value(rest: str, lines: list[_Line], i: int, indent: int, raw: list[str], seq_ok: bool) -> tuple[Any, int]:
    """The value after ``key:`` or ``-`` on line i-1: inline, or the block that follows."""
    rest = _strip_comment(rest)
    if rest in ("|", ">", "|-", ">-", "|+", ">+"):
        block = []
        while i < len(lines) and lines[i][0] > indent:
            block.append(lines[i][1])
            i += 1
        return ("\n" if rest[0] == "|" else " ").join(block), i
    if rest and not rest.startswith("!") or (rest.startswith("!") and " " in rest):
        return _scalar(rest), i
    if i < len(lines) and lines[i][0] > indent:
        return _parse_block(lines, i, lines[i][0], raw)
    if seq_ok and i < len(lines) and lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")):
        return _parse_sequence(lines, i, indent, raw)
    return None, i


def _parse_mapping(lines: list[_Line], i: int, indent: int, raw: list[str]) -> tuple[dict[str, Any], int]:
    result: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        content, number = lines[i][1], lines[i][2]
        if content == "-" or content.startswith("- "):
            break
        pair = _split_key(_strip_comment(content))
        if pair is None:
            raise ValueError(f"line {number}: expected 'key: value', got {content[:60]!r}")
        key, rest = pair
        value, i = _parse_value(rest, lines, i + 1, indent, raw, seq_ok=True)
        result[key] = value
    return result, i


def _parse_sequence(lines: list[_Line], i: int, indent: int, raw: list[str]) -> tuple[list[Any], int]:
    result: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and (lines[i][1] == "-" or lines[i][1].startswith("- ")):
        content, number = lines[i][1], lines[i][2]
        rest = content[1:].lstrip(" ")
        if rest and _split_key(_strip_comment(rest)) is not None:
            # "- key: value" opens a mapping whose keys sit where "key" starts
            inner = indent + (len(content) - len(rest))
            lines[i] = (inner, rest, number)
            value, i = _parse_mapping(lines, i, inner, raw)
        else:
            value, i = _parse_value(rest, lines, i + 1, indent, raw, seq_ok=False)
        result.append(value)
    return result, i
