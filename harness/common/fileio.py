"""Small file helpers shared by every writer: atomic JSON and file hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import IO

from harness.common.bulk import gc_paused
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
    """JSON with bounds on nesting and integer length, and no NaN/Infinity literals: one line otherwise.

    Both bounds are read from the text before parsing, so a hostile file is refused before it costs memory,
    and a 500k-detection results file (3M values) is checked in a few passes over its bytes.
    """
    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > JSON_MAX_INT_DIGITS:
            raise ValueError(f"an integer of {len(text)} digits")
        return int(text)

    def no_constant(name: str) -> float:
        raise ValueError(f"the non-standard literal {name}")

    text = raw.encode() if isinstance(raw, str) else raw
    brackets = _bracket_depth(text)
    if brackets is not None and brackets > JSON_MAX_DEPTH:  # a value nests one level below its bracket
        raise HarnessError(f"{what} is nested more than {JSON_MAX_DEPTH} levels deep; it is not data")
    # Without a run of more digits than an integer may have, no integer can break the bound, and the parser
    # runs without a Python call per integer (a 500k-detection results file holds a million of them).
    long_digits = holds_long_digit_run(text)
    try:
        with gc_paused():
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
    # The text bounds the depth to brackets..brackets + 1; only at the bound does the parsed data decide.
    if (brackets is None or brackets + 1 > JSON_MAX_DEPTH) and _depth(data) > JSON_MAX_DEPTH:
        raise HarnessError(f"{what} is nested more than {JSON_MAX_DEPTH} levels deep; it is not data")
    return data


_LONG_DIGITS = b"0" * (JSON_MAX_INT_DIGITS + 1)
_DIGITS_AS_ZERO = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # every digit "0", the rest a space
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"\\')


def holds_long_digit_run(text: bytes) -> bool:
    """Whether `text` has a run of more digits than an integer may have: only then can one break the bound."""
    return _LONG_DIGITS in text.translate(_DIGITS_AS_ZERO)


def _bracket_depth(text: bytes) -> int | None:
    """The deepest nesting of brackets outside strings, from the bytes alone; None when the text holds a
    backslash (an escaped quote would flip the string parity; the parsed data is walked instead)."""
    import numpy as np

    skeleton = text.translate(None, _NOT_STRUCTURE)  # quotes and brackets only: a few bytes per value
    if b"\\" in skeleton:
        return None
    chars = np.frombuffer(skeleton, np.uint8)
    outside = (np.cumsum(chars == ord('"'), dtype=np.int64) & 1) == 0  # a quote itself counts as inside
    steps = ((chars == ord("[")) | (chars == ord("{"))).astype(np.int64)
    steps -= (chars == ord("]")) | (chars == ord("}"))
    steps[~outside] = 0
    return int(np.cumsum(steps).max(initial=0))


def _depth(obj: object) -> int:
    """Nesting depth (a value inside a container is one level below it), level by level: a recursive walk
    would itself overflow on hostile input."""
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
