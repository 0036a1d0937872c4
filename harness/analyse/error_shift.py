"""What a quantized sibling broke, in detection terms: the change in each TIDE error type with a paired
interval, both models' class confusions, and the images where it gained most of each error.

The two eval records name their detections file and annotation file (as the paired ΔAP reads them,
harness.analyse.paired); each is matched once (harness.scoring.errors.assign) and resampled together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from harness.analyse.paired import MatchCache, cached_for_record
from harness.records.selection import model_name
from harness.scoring.errors import ERROR_TYPES, SIZES

# The errors' paired bootstrap re-scores nine variants per size and model: 200 resamples keep a pair near
# 10 s on one core; the standard error of an interval end from 200 resamples is about a tenth of its width.
ERROR_RESAMPLES = 200
_PHRASES = {"cls": "classification error", "loc": "localisation error", "both": "class-and-box error",
            "dupe": "duplicate detections", "bkg": "background detections", "miss": "missed objects"}


def record_assignment(record: Mapping[str, Any], base_dir: Path | None = None, cache: MatchCache | None = None):
    """(Assignment, ground truth, the results it matched) of an eval record's detections on the images it
    scored, or a reason; `Assignment.det_ref` indexes that results list."""
    from harness.scoring.errors import assign

    return cached_for_record("errors", record, base_dir, cache,
                             lambda gt, kept, ids: (assign(gt, kept, ids), gt, kept))


def error_shift(f: Mapping[str, Any], q: Mapping[str, Any], base_dir: Path | None = None, *,
                resamples: int = ERROR_RESAMPLES, level: float = 0.95, seed: int = 0,
                cache: MatchCache | None = None, top: int = 3, min_score: float = 0.3) -> dict | str:
    """The `errors` block of a float / quantized pair, or the reason there is none.

    `paired`: per size and error type, each model's ΔAP50 and the change with its interval;
    `confusion`: each model's class confusion (detections >= `min_score`); `images`: per error type,
    the `top` image ids where the quantized model gained most of it (harness.scoring.errors.per_image_errors).
    """
    import numpy as np

    from harness.scoring.error_pairs import confusion, paired_errors, per_image_errors

    cache = cache if cache is not None else MatchCache()
    a = record_assignment(f, base_dir, cache)
    if isinstance(a, str):
        return a
    b = record_assignment(q, base_dir, cache)
    if isinstance(b, str):
        return b
    if a[0].image_ids != b[0].image_ids:
        return f"{model_name(cast(Any, f))} and {model_name(cast(Any, q))} scored different images"
    if a[0].n_images < 2:
        return "fewer than 2 images: nothing to resample"
    fa, qa = a[0], b[0]
    pf, pq = per_image_errors(fa), per_image_errors(qa)
    images = {}
    for t in ERROR_TYPES:
        gain = pq[t] - pf[t]
        order = np.argsort(-gain, kind="stable")[:top]
        images[t] = [{"image_id": int(fa.image_ids[i]), "gain": round(float(gain[i]), 4)} for i in order
                     if gain[i] > 0]
    return {"float": model_name(cast(Any, f)), "quant": model_name(cast(Any, q)),
            "paired": paired_errors(fa, qa, resamples=resamples, level=level, seed=seed),
            "confusion": {"float": confusion(fa, min_score, a[1].categories),
                          "quant": confusion(qa, min_score, b[1].categories)},
            "images": images}


def added(shift: Mapping[str, Any], size: str = "all") -> list[tuple[str, dict]]:
    """The error types the quantized model added (change > 0), largest first, with their change blocks."""
    block = (shift.get("paired") or {}).get("sizes", {}).get(size) or {}
    rows = [(t, block[t]) for t in ERROR_TYPES if t in block and (block[t].get("delta") or 0) > 0]
    return sorted(rows, key=lambda r: -r[1]["delta"])


def _pts(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def headline(shift: Mapping[str, Any], first_bad: Mapping[str, Any] | None = None, quant_label: str | None = None,
             most: int = 2) -> str:
    """'the int8 model adds 1.20 [0.40, 2.10] points of localisation error and 0.80 [...] of missed objects;
    its error starts at op 12 CONV_2D (...)' (ΔAP50 points, paired interval)."""
    label = quant_label or shift.get("quant") or "the quantized model"
    rows = added(shift)[:most]
    if rows:
        parts = [f"{_pts(r['delta'])} [{_pts(r.get('lo'))}, {_pts(r.get('hi'))}] points of {_PHRASES[t]}"
                 for t, r in rows]
        what = f"{label} adds " + parts[0] + "".join(
            " and " + p.replace(" points of ", " of ", 1) for p in parts[1:])
    else:
        what = f"{label} adds no error of any TIDE type"
    if first_bad:
        what += f"; its error starts at op {first_bad.get('index')} {first_bad.get('op', '')}".rstrip()
        if first_bad.get("name"):
            what += f" ({str(first_bad['name']).split(';')[0]})"  # a fused op's name lists every tensor it took
    level = (shift.get("paired") or {}).get("level")
    what += f" (ΔAP50, {100 * level:g}% paired interval)" if level else ""
    base = ((shift.get("paired") or {}).get("sizes") or {}).get("all") or {}
    ap = base.get("AP50") or {}
    if ap.get("a") is not None and ap.get("b") is not None and ap["b"] < 0.5 * ap["a"]:
        # TIDE fixes one error type at a time: in a model that lost most of its AP, every fix alone recovers
        # little, so every error's ΔAP shrinks; the AP itself says more.
        what += (f"; AP50 fell from {_pts(ap['a'])} to {_pts(ap['b'])}, so each error alone costs little: "
                 "the model is broken rather than worse at one thing")
    return what


def first_bad(quant_compare: Mapping[str, Any]) -> dict | None:
    """{index, op, name} of the op where a quant_compare record's accumulated error starts, or None."""
    name = quant_compare.get("first_bad_layer")
    for row in quant_compare.get("layers") or []:
        if name and row.get("name") == name:
            return {"index": row.get("index"), "op": row.get("op"), "name": name}
    return None


def size_profile(errors: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(size, error type, ΔAP50) of an eval record's `results.errors`, per size, largest first."""
    out = []
    for size in SIZES[1:]:
        block = (errors.get("sizes") or {}).get(size) or {}
        for t, v in (block.get("errors") or {}).items():
            out.append((size, t, float(v)))
    return sorted(out, key=lambda r: -r[2])

