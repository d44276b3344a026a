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
  PyYAML's safe loader, reading Ruby's tags as plain data; an entry that cannot
  be read only costs its own submission.
- :func:`unpack_student_zip` is the extractor :mod:`grader.model.locate` uses
  for a zip found inside a student's submission.
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
    "gradescope_metadata_entries",
    "parse_metadata_yaml",
    "read_canvas_export",
    "read_gradescope_export",
    "safe_extract",
    "unpack_student_zip",
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
    problem: str = ""
    """Why this submission cannot be graded although its folder is there (an unreadable metadata entry)."""


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


STUDENT_ZIP_BYTES = 50 * 1024 * 1024


def unpack_student_zip(archive: Path, dest: Path) -> Path:
    """A zip found inside a student's submission, extracted safely (at most 50 MiB) into ``dest``."""
    return safe_extract(archive, dest, max_total_bytes=STUDENT_ZIP_BYTES)


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
    """One submission per Canvas user: their files, renamed back, in the folder ``workdir/<name>_<userid>/``.

    Which file is the module is left to :func:`grader.model.locate.prepare_submission`
    (one ``.py`` file of any name is graded as the module, and the report says so).

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
        submissions.append(LmsSubmission(student=name, path=target, metadata=metadata))
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

MAX_METADATA_BYTES = 100 * 1024 * 1024
_TOP_KEY = re.compile(r"^(?P<key>[^\s#\-.'\"][^:]*?):(?:\s|$)")


def read_gradescope_export(folder: Path) -> list[LmsSubmission]:
    """One submission per ``submission_<id>`` folder named in ``submission_metadata.yml``.

    The student is the submitter's name (names joined with " + " for a group);
    ids and e-mail addresses go into the metadata. Folders the metadata does not
    mention are graded under their folder name. An entry that cannot be read
    (the file is YAML Ruby wrote, read entry by entry when the whole does not
    load) gives its folder a submission with a ``problem``: that student gets a
    "not graded" result saying why, and the rest of the class is graded.
    """
    meta_path = folder / GRADESCOPE_METADATA
    try:
        raw = meta_path.read_bytes()
    except OSError as exc:
        raise ArchiveError(f"{meta_path}: cannot be read as Gradescope metadata: {exc.strerror or exc}") from None
    if len(raw) > MAX_METADATA_BYTES:
        raise ArchiveError(f"{meta_path}: larger than {MAX_METADATA_BYTES // (1024 * 1024)} MiB")
    entries, broken = gradescope_metadata_entries(raw.decode("utf-8", errors="replace"))
    submissions = []
    seen: set[str] = set()
    for key, record in entries.items():
        path = folder / key
        if "/" in key or key in ("", ".", "..") or not path.is_dir():
            continue
        seen.add(key)
        submissions.append(_gradescope_submission(key, path, record))
    for key, reason in broken.items():
        path = folder / key
        if "/" in key or key in ("", ".", "..") or not path.is_dir() or key in seen:
            continue
        seen.add(key)
        problem = (
            f"the entry for {key} in {GRADESCOPE_METADATA} could not be read ({reason}), so who submitted it is "
            f"unknown; grade the folder {key} on its own with `grader check`"
        )
        metadata = {"lms": "gradescope", "gradescope_submission": key}
        submissions.append(LmsSubmission(student=key, path=path, metadata=metadata, problem=problem))
    for path in sorted(folder.iterdir()):
        if path.is_dir() and path.name not in seen and not path.name.startswith(".") and path.name != "__MACOSX":
            submissions.append(
                LmsSubmission(student=path.name, path=path, metadata={"lms": "gradescope", "gradescope_submission": path.name})
            )
    return submissions


def _gradescope_submission(key: str, path: Path, record: Any) -> LmsSubmission:
    submitters = record.get(":submitters") if isinstance(record, dict) else None
    people = [s for s in submitters if isinstance(s, dict)] if isinstance(submitters, list) else []
    names = [_text(p.get(":name") or p.get(":email") or p.get(":sid") or "") for p in people]
    names = [n for n in names if n]
    metadata: dict[str, Any] = {"lms": "gradescope", "gradescope_submission": key}
    if people:
        metadata["submitters"] = [
            {str(k).lstrip(":"): _text(v) for k, v in p.items() if k in (":name", ":sid", ":email") and v is not None}
            for p in people
        ]
    if isinstance(record, dict) and record.get(":created_at"):
        metadata["created_at"] = _text(record[":created_at"])
    return LmsSubmission(student=" + ".join(names) or key, path=path, metadata=metadata)


def _text(value: Any) -> str:
    """A metadata value as text; a Ruby object (``!ruby/object:ActiveSupport::TimeWithZone``) by its time."""
    if isinstance(value, dict):
        for key in ("time", "utc", ":time", ":utc"):
            if value.get(key) is not None:
                return _text(value[key])
    return str(value)


def _metadata_loader() -> Any:
    """PyYAML's safe loader, keeping scalars as text and reading any tag it does not know as plain data.

    Ruby's YAML writer tags objects (``!ruby/object:BigDecimal``, ``!ruby/hash:...``): those
    become plain mappings, lists or strings. Only ``null`` and booleans are resolved, so ids keep
    their leading zeros and times their own spelling.
    """
    import yaml

    class MetadataLoader(yaml.SafeLoader):
        pass

    kept = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:bool")
    MetadataLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag in kept]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def plain(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)  # type: ignore[arg-type]

    MetadataLoader.add_constructor(None, plain)  # type: ignore[arg-type]
    return MetadataLoader


def parse_metadata_yaml(text: str) -> Any:
    """Parse Gradescope's ``submission_metadata.yml`` (YAML written by Ruby); ``ValueError`` names the line."""
    import yaml

    try:
        return yaml.load(text, Loader=_metadata_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"{where}{problem}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None


def gradescope_metadata_entries(text: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The entries of the metadata by submission folder, and the folders whose entry could not be read (why).

    The whole file is read at once; if that fails, each top-level entry is read on
    its own, so one broken entry only costs its own submission.
    """
    try:
        data = parse_metadata_yaml(text)
    except ValueError:
        data = None
    else:
        return ({str(k): v for k, v in data.items()} if isinstance(data, dict) else {}), {}
    entries: dict[str, Any] = {}
    broken: dict[str, str] = {}
    for key, first_line, chunk in _top_level_chunks(text):
        try:
            value = parse_metadata_yaml(chunk)
        except ValueError as exc:
            broken[key] = _shift_line(str(exc), first_line - 1)
            continue
        if isinstance(value, dict):
            entries.update({str(k): v for k, v in value.items()})
    return entries, broken


def _shift_line(message: str, offset: int) -> str:
    """``"line 3: ..."`` of an entry read on its own, as the line of the whole file."""
    match = re.match(r"^line (\d+)", message)
    return f"line {int(match[1]) + offset}{message[match.end():]}" if match else message


def _top_level_chunks(text: str) -> list[tuple[str, int, str]]:
    """``(key, first line number, text)`` of each top-level ``key:`` entry of a block mapping."""
    chunks: list[tuple[str, int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() in ("---", "..."):
            continue
        match = _TOP_KEY.match(line)
        if match:
            chunks.append((match["key"].strip(), number, [line]))
        elif chunks:
            chunks[-1][2].append(line)
    return [(key, first, "\n".join(lines) + "\n") for key, first, lines in chunks]
