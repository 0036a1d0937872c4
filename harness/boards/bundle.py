"""The measuring wing as one self-contained file for a board: a zipapp run as `python3 FILE JOB RUN_ID`.

It holds the package's measuring layers only (harness/__init__, errors, common, models, scoring, records,
measure: what tests/test_layers.py lets run on a board) and a __main__ that calls harness.measure.job, so the
board needs nothing of the harness installed, only its own Python with numpy, Pillow and a TFLite runtime.
Built deterministically (sorted names, fixed timestamps and modes), so its sha256 names it in the board's
content-addressed store and a board that has this harness's bundle is sent nothing.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import harness

PACKAGE = Path(harness.__file__).resolve().parent
LAYERS = ("common", "models", "scoring", "records", "measure")  # the board's part of the package
TOP = ("__init__.py", "errors.py")
MAIN = b"import sys\nfrom harness.measure.job import main\nsys.exit(main())\n"
EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest date: no build time in the file


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str
    modules: tuple[str, ...]  # the archive's member names


def bundle_files(package: Path = PACKAGE) -> list[tuple[str, Path]]:
    """(name in the archive, file) for every module of the board's layers, sorted by name."""
    files = [(f"harness/{name}", package / name) for name in TOP]
    for layer in LAYERS:
        files += [(f"harness/{p.relative_to(package).as_posix()}", p) for p in (package / layer).rglob("*.py")
                  if "__pycache__" not in p.parts]
    return sorted(files)


@functools.cache
def build_bundle() -> Bundle:
    """The zipapp of this harness (built once per process)."""
    buf = io.BytesIO()
    members = [("__main__.py", MAIN), *((name, path.read_bytes()) for name, path in bundle_files())]
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=9)
    data = buf.getvalue()
    return Bundle(data, hashlib.sha256(data).hexdigest(), tuple(name for name, _ in members))


def write_bundle(path: str | Path) -> Path:
    """The bundle as a file (to copy onto a board by hand: `python3 FILE JOB RUN_ID`)."""
    from harness.common.fileio import write_bytes_atomic

    return write_bytes_atomic(path, build_bundle().data)
