"""The one way every output file is written: atomically, never through a planted file or link.

The text goes to a temporary file created exclusively (``O_EXCL``) in the target's folder,
which is then renamed over the target: a reader sees the old file or the whole new one,
and a file or symbolic link planted at the target's name is replaced, never followed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path | str, data: str | bytes, *, encoding: str = "utf-8", mode: int = 0o644) -> Path:
    """Write ``data`` (text is encoded with ``encoding``) to ``path`` atomically; returns the path.

    The folder is created if missing. Text is written exactly as given (no newline
    translation), so CSV line endings stay as the writer made them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode(encoding) if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
