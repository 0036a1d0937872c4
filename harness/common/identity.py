"""One identity per thing: the hashes that records are joined by.

A model is a file or a SavedModel directory; both get one sha256 here, whichever command looks at them
(eval, bench, quantize, compare), so records of one model always carry the same hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from harness.common.fileio import sha256_file


def model_sha256(path: str | Path) -> str:
    """sha256 of a model file, or of a directory as its sorted (relative path, file sha256) pairs."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{sha256_file(f)}\n".encode())
    return h.hexdigest()


def image_ids_sha256(ids: Iterable[int]) -> str:
    """The hash of an ordered image-id list (`dataset.image_ids_sha256` of a record)."""
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()


def names_sha256(names: Iterable[str]) -> str:
    """The hash of an ordered list of file names (a calibration list, an image directory's listing)."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()
