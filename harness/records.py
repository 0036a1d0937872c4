"""The one versioned JSON record that joins measuring (eval, bench) and reporting.

Version 1 holds: schema, schema_version, kind, created, harness, command, host, versions, and a body
per kind. `eval` adds model (the card), protocol, backend, dataset, results (12 stats, per class),
baseline comparison and timing. Later versions may add keys; readers must ignore keys they do not know.
"""

from __future__ import annotations

import datetime as _dt
import sys
from importlib.metadata import PackageNotFoundError, version

from harness import __version__, host

SCHEMA = "centernet-harness/run"
SCHEMA_VERSION = 1
_PACKAGES = ("numpy", "Pillow", "pycocotools", "faster-coco-eval", "ai-edge-litert", "tflite-runtime",
             "tensorflow", "tensorflow-cpu")


def versions() -> dict[str, str]:
    """Installed versions of the packages that can change a result (read from metadata, not imported)."""
    out = {"python": sys.version.split()[0]}
    for dist in _PACKAGES:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def new_record(kind: str, **body: object) -> dict:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "harness": __version__,
        "command": sys.argv[1:],
        "host": host.describe(),
        "versions": versions(),
        **body,
    }
