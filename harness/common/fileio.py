"""Small file helpers shared by every writer: atomic JSON and file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from itertools import chain
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


# Bounds for JSON inputs: deeper nesting or longer integers are an attack or a broken file, not data.
JSON_MAX_DEPTH = 64
JSON_MAX_INT_DIGITS = 30


def read_regular_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of a regular file; a FIFO, socket or device is refused before it is opened (it could block
    forever or never end), and a missing file or a folder is one line naming `what`."""
    import stat

    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise HarnessError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise HarnessError(f"cannot read {what} {path}: {os_error_line(exc)}") from None
    if stat.S_ISDIR(mode):
        raise HarnessError(f"{what} {path} is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise HarnessError(f"{what} {path} is not a regular file (a FIFO or a device); give a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"cannot read {what} {path}: {os_error_line(exc)}") from None


def parse_json_bounded(raw: bytes | str, what: str) -> object:
    """JSON with bounds on nesting and integer length, and no NaN/Infinity literals: one line otherwise."""
    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > JSON_MAX_INT_DIGITS:
            raise ValueError(f"an integer of {len(text)} digits")
        return int(text)

    def no_constant(name: str) -> float:
        raise ValueError(f"the non-standard literal {name}")

    # Without a run of more digits than an integer may have, no integer can break the bound, and the parser
    # runs without a Python call per integer (a 500k-detection results file holds a million of them).
    long_digits = _LONG_DIGITS.search(raw.encode() if isinstance(raw, str) else raw)
    try:
        data = (json.loads(raw, parse_int=bounded_int, parse_constant=no_constant) if long_digits else
                json.loads(raw, parse_constant=no_constant))
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{what} is not JSON ({exc.msg} at line {exc.lineno})") from None
    except UnicodeDecodeError:
        raise HarnessError(f"{what} is not JSON (not UTF-8 text)") from None
    except RecursionError:
        raise HarnessError(f"{what} is nested too deeply to be data") from None
    except ValueError as exc:
        raise HarnessError(f"{what} holds {exc}; numbers must be finite and of ordinary size") from None
    if _depth(data) > JSON_MAX_DEPTH:
        raise HarnessError(f"{what} is nested more than {JSON_MAX_DEPTH} levels deep; it is not data")
    return data


_LONG_DIGITS = re.compile(rb"[0-9]{%d,}" % (JSON_MAX_INT_DIGITS + 1))


def _depth(obj: object) -> int:
    """Nesting depth (a value inside a container is one level below it), level by level: a recursive walk
    would itself overflow on hostile input, and a 500k-detection results file has 3M values to visit."""
    if not isinstance(obj, dict | list):
        return 1
    deepest, depth, level = 1, 1, [obj]
    while level:
        values = list(chain.from_iterable(item.values() if isinstance(item, dict) else item for item in level))
        below = [v for v in values if isinstance(v, dict | list)]
        if values:  # a value, plain or not, one level down
            deepest = depth + 1
        depth += 1
        level = below
    return deepest


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
