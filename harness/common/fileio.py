"""Small file helpers shared by every writer: atomic JSON and file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from harness.errors import HarnessError, os_error_line

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_json_atomic(path: str | Path, obj: object, indent: int | None = None) -> Path:
    """Write JSON through a temporary file and a rename, so a crash never leaves half a file."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=indent) + "\n").encode())


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write bytes through a temporary file in the same directory and a rename: readers see all or nothing."""
    return write_atomic(path, lambda f: f.write(data))


def write_atomic(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Let `write` fill a temporary file beside `path` (e.g. PIL's image.save), then rename it into place."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise HarnessError(f"cannot write {path}: {os_error_line(exc)}") from exc
    os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise HarnessError(f"cannot write {path}: {os_error_line(exc)} (nothing was written there)") from exc
        raise
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
