"""Reading a results file leniently: what is usable is kept, what is not is counted, never refused."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from harness.errors import HarnessError


def read_results_leniently(path: str | Path) -> tuple[list[dict], list[str]]:
    """A results JSON file as a list of entries, keeping what is usable and saying what was dropped.

    Unlike harness.scoring.coco.load_results it does not refuse unknown category or image ids: those
    are evidence. Only a file that is not JSON, or not a list, is an error.
    """
    from harness.scoring.coco import read_results_json

    path = Path(path)
    data = read_results_json(path)
    if not isinstance(data, list):
        raise HarnessError(f"{path}: a COCO results file is a JSON list of detections")
    return usable_entries(data)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def usable_entries(data: Sequence[object]) -> tuple[list[dict], list[str]]:
    """Entries with an integer image_id and category_id, four finite bbox numbers and a score."""
    kept, notes = [], []
    bad = 0
    for r in data:
        if (isinstance(r, dict) and isinstance(r.get("image_id"), int) and isinstance(r.get("category_id"), int)
                and isinstance(r.get("bbox"), list) and len(r["bbox"]) == 4 and all(map(_number, r["bbox"]))
                and _number(r.get("score"))):
            kept.append({"image_id": r["image_id"], "category_id": r["category_id"],
                         "bbox": [float(v) for v in r["bbox"]], "score": float(r["score"])})
        else:
            bad += 1
    if bad:
        notes.append(f"{bad} of {len(data)} entries are not bbox detections (need integer image_id and "
                     "category_id, bbox of 4 numbers, score) and were left out")
    return kept, notes


