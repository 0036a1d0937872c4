"""The one versioned JSON record that joins measuring (eval, bench) and reporting.

Version 1 holds: schema, schema_version, kind, created, harness, command, host, versions, and a body
per kind. `eval` adds model (the card), protocol, backend, dataset, results (12 stats, per class),
baseline comparison and timing; `bench` adds model, backend, settings, phases (with raw samples).
Version 2 adds `family` and `precision` to the model card, so float and quantized siblings can be paired;
version 1 records are upgraded on read from the zoo card of the same name.
Version 3 makes the protocol the whole path from image file to results entry: `model.input` is the full
preprocessing (harness.models.preprocess.Preprocess: resize method, aspect policy and padding, channel
order, EXIF, mean/std, dtype), a card's protocols may carry their own `preprocess`, outputs may carry a
fallback `position`, baselines a `quote`; the eval record's `protocol` block holds the effective
`preprocess`, `decoder`, `decoder_settings`, `detections_per_image` and the backend's `input_quantization`.
Older records are upgraded on read: their 4-key input ({height, width, dtype, resize}, Pillow filter
names) is completed with the defaults those runs used (stretch, RGB, no EXIF, no scaling).
Kind `ab_bench` (no version change: a new kind) holds `design` (blocks, block size, order), `sides`
(candidate / baseline / reference: label, settings, `blocks_s`, `samples_s`, stats) and `ratios` (e.g.
"candidate/baseline": ratio, lo, hi, level, per-block ratios, verdict).
Kind `npu_compile` (a new kind) holds what an NPU compiler made of a model (`harness compile`): `compiler`
(name, version, options), `model` and `output` (paths, sha256), the compiler's own `estimate` (inference ms,
cycles), `ops` (NPU / CPU counts, the ops left to the CPU) and `memory` (SRAM / DRAM used).
Version 4 adds `results.errors` to eval and score records: the TIDE error decomposition per object size
(harness.scoring.errors.decompose). Older records have none and load unchanged; readers treat it as absent.
Key `provenance` (no version change: an optional key; harness.records.provenance) holds the code revision
measured (commit, commit time, dirty, branch), the harness's version and the CI run (system, run id and URL, job,
runner); a record without it reads as "unknown" in each (harness.records.provenance.of_record).
Later versions may add keys; readers must ignore keys they do not know, and refuse versions they do not.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import json
import math
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import cast

from harness import __version__
from harness.errors import HarnessError
from harness.records import host, provenance
from harness.records.types import RunRecord

SCHEMA = "centernet-harness/run"
SCHEMA_VERSION = 4
# Keys a reader relies on, per kind; other kinds (from newer harnesses) are kept and passed through.
REQUIRED: dict[str, tuple[str, ...]] = {
    "eval": ("model", "dataset", "results", "backend"),
    "bench": ("model", "backend", "settings", "phases"),
    "score": ("dataset", "results"),
    "quant_compare": ("float_model", "quant_model", "heads", "layers"),
    "doctor": ("dataset", "findings"),
    "quant_search": ("validate", "calibration", "float", "candidates", "references"),
    "path_compare": ("model", "paths", "heads", "ap"),
    "op_profile": ("model", "source", "profiles"),
    # Interleaved A/B latency (harness.measure.ab): each side's samples and blocks, and the ratios with intervals.
    "ab_bench": ("design", "sides", "ratios"),
    # An NPU compiler's output and its own estimate (harness.boards.vela): Vela for the Ethos-U of i.MX 93.
    "npu_compile": ("compiler", "model", "output", "estimate", "ops", "memory"),
    # Detections for an evaluation server (harness.scoring.testdev): the file, its checks; the AP is the server's.
    "submission": ("model", "dataset", "submission"),
}
# Values inside the body that `report` and `check` read without a fallback, per kind: a dotted path and
# the type it must have. A record missing one would crash every later report of a store that holds it.
SHAPES: dict[str, tuple[tuple[str, str], ...]] = {
    "eval": (("model.name", "str"), ("results.stats", "dict"), ("results.stats.AP", "number")),
    "score": (("results.stats", "dict"), ("results.stats.AP", "number")),
    "bench": (("model.name", "str"), ("phases.first_inference_s", "number"),
              *((f"phases.{phase}.{key}", kind) for phase in ("model_only", "end_to_end")
                for key, kind in (("stats", "dict"), ("stats.p50_s", "number"), ("samples_s", "numbers")))),
}
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
        "provenance": provenance.describe(),
        **body,
    }


def validate(record: object, where: str) -> RunRecord:
    """Check a record read from a file or the store; returns it upgraded to the current version.

    `where` names the file (or store row) in the error, so a bad record among hundreds can be found.
    What this checks is what harness.records.types declares required: the envelope, REQUIRED, SHAPES.
    """
    if not isinstance(record, dict):
        raise HarnessError(f"{where}: not a run record (expected a JSON object, got {type(record).__name__})")
    if record.get("schema") != SCHEMA:
        raise HarnessError(f"{where}: not a harness run record (schema {record.get('schema')!r}, "
                           f"expected {SCHEMA!r})")
    ver = record.get("schema_version")
    if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
        raise HarnessError(f"{where}: schema_version {ver!r} is not a positive integer")
    if ver > SCHEMA_VERSION:
        raise HarnessError(f"{where}: schema_version {ver} is newer than this harness reads ({SCHEMA_VERSION}); "
                           "upgrade centernet-harness")
    kind = record.get("kind")
    if not isinstance(kind, str) or not kind:
        raise HarnessError(f"{where}: the record has no kind")
    missing = [k for k in REQUIRED.get(kind, ()) if not isinstance(record.get(k), dict | list)]
    if missing:
        raise HarnessError(f"{where}: {kind} record lacks {', '.join(missing)}")
    if not isinstance(record.get("host"), dict) or not isinstance(record["host"].get("fingerprint"), str):
        raise HarnessError(f"{where}: the record has no host fingerprint")
    for path, expected in SHAPES.get(kind, ()):
        if not _has(record, path, expected):
            raise HarnessError(f"{where}: {kind} record has no {expected} at {path}; it cannot be reported "
                               "(re-run the measurement, or set this record aside)")
    return cast(RunRecord, _upgrade(record))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_CHECKS = {
    "str": lambda v: isinstance(v, str),
    "dict": lambda v: isinstance(v, dict),
    "number": _is_number,
    "numbers": lambda v: isinstance(v, list) and all(_is_number(x) for x in v),
}


def _has(record: dict, path: str, expected: str) -> bool:
    value: object = record
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return _CHECKS[expected](value)


def _upgrade(record: dict) -> dict:
    if record["schema_version"] >= SCHEMA_VERSION or not isinstance(record.get("model"), dict):
        return record
    rec = copy.deepcopy(record)
    if rec["schema_version"] < 2:
        from harness.models.zoo import ZOO

        card = ZOO.get(rec["model"].get("name"))
        rec["model"].setdefault("family", card.family if card else None)
        rec["model"].setdefault("precision", card.precision if card else "float32")
    _upgrade_input(rec)
    return rec


def _upgrade_input(rec: dict) -> None:
    """v1/v2 -> v3: the 4-key input completed to the full preprocessing, which is also what the eval ran."""
    from harness.models.preprocess import Preprocess

    model = rec["model"]
    if not isinstance(model.get("input"), dict):
        return
    try:
        model["input"] = Preprocess.from_dict(model["input"]).to_dict()
    except (HarnessError, TypeError, ValueError):
        return  # left as written: reading the card back says what is wrong with it
    proto = rec.get("protocol")
    if rec.get("kind") == "eval" and isinstance(proto, dict):
        proto.setdefault("preprocess", model["input"])
        proto.setdefault("decoder", model.get("decoder"))
        settings = (rec.get("run_key") or {}).get("decoder_settings")
        if settings is not None:
            proto.setdefault("decoder_settings", settings)


def digest(record: RunRecord | dict) -> str:
    """A content hash: the same record imported twice (from a board and from CI) is stored once."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_record_file(path: str | Path) -> list[RunRecord]:
    """Records in a file: one JSON record, a JSON list of them, or JSON Lines; each validated."""
    from harness.common.fileio import parse_json_bounded, read_regular_bytes

    path = Path(path)
    raw = read_regular_bytes(path, "run record")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise HarnessError(f"{path}: not JSON (not UTF-8 text); expected a run record written by "
                           "harness --json") from None
    try:
        data = parse_json_bounded(text, str(path))
        items = data if isinstance(data, list) else [data]
    except HarnessError as whole:
        try:  # JSON Lines: one record a line
            items = [parse_json_bounded(line, str(path)) for line in text.splitlines() if line.strip()]
        except HarnessError:
            raise HarnessError(f"{whole}; expected a run record written by harness --json") from None
    if not items:
        raise HarnessError(f"{path}: holds no run records")
    return [validate(r, f"{path}" if len(items) == 1 else f"{path}[{i}]") for i, r in enumerate(items)]
