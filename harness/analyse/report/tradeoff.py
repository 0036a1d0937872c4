"""The quantization search's trade-off: every candidate plan as a point (ΔAP against latency or cost, file
size beside it), which of them are on the Pareto front, the chosen plan and the reference precisions.

A candidate is worth considering only if no other one is at least as fast and at least as accurate; the
front is those candidates, and everything else is dominated. On a CPU target the float32 model often
dominates every integer plan (it is the fastest and loses nothing), which is the honest answer there;
an NPU target ranks by the cost model's figure instead, where float32 has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from harness.records.selection import latest_searches, search_subject
from harness.records.tool_types import QuantSearchRecord
from harness.records.types import RunRecord

ROLES = ("chosen", "closest")
REFERENCES = ("float32", "int8", "int16x8")  # the keys of the record's "references"
FLOAT_ROW = "float32 (reference)"  # the float block, where no candidate is the float32 model


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point dominates, cheapest first; a point is (cost, value), lower
    cost and higher value better. A dominates B when A is no worse in both and better in at least one, so
    two identical points are both on the front (neither beats the other)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: list[int] = []
    best = float("-inf")  # the highest value among cheaper (or equally cheap) points already passed
    best_cost = None
    for i in order:
        cost, value = points[i]
        if value > best or (value == best and cost == best_cost):
            front.append(i)
            if value > best:
                best, best_cost = value, cost
    return front


def _points(x: float | None) -> float | None:
    """A search record keeps AP in points (as `harness quantize` prints them), unlike eval's fractions."""
    return None if x is None else round(float(x), 2)


def _delta(c: dict, float_ap: float | None) -> float | None:
    """ΔAP in points (candidate - float): as the record gives it, else from the two APs."""
    if c.get("delta_ap") is not None:
        return round(float(c["delta_ap"]), 2)
    if c.get("ap") is None or float_ap is None:
        return None
    return round(float(c["ap"]) - float(float_ap), 2)


def label(rec: QuantSearchRecord) -> str:
    """How a search is named in tables and plots: what was searched, for which target."""
    return f"{search_subject(rec)} for {rec.get('target')}"


def _source(rec: QuantSearchRecord) -> str:
    """Where a search's cost figures come from; before records said so, every NPU figure was modelled."""
    if rec.get("cost_source"):
        return str(rec["cost_source"])
    return "measured p50 on this host" if rec.get("target") == "cpu" else "modelled"


def candidates(rec: QuantSearchRecord) -> list[dict]:
    """One row per candidate of one search, plus the float block when no candidate is the float model."""
    refs = {v: k for k, v in (rec.get("references") or {}).items() if v}
    fl = rec.get("float") or {}
    float_ap = fl.get("ap")
    rows: list[dict[str, Any]] = []
    for c in rec.get("candidates", []):
        roles = [r for r in ROLES if rec.get(r) is not None and rec.get(r) == c.get("name")]
        if c.get("name") in refs and c.get("status") == "measured":  # else the float block stands in (below)
            roles.append(f"{refs[c['name']]} reference")
        rows.append({
            "search": label(rec), "candidate": c.get("name"), "status": c.get("status"),
            "AP": _points(c.get("ap")), "ΔAP": _delta(c, float_ap), "p50 ms": c.get("p50_ms"),
            "size MB": None if c.get("size_bytes") is None else round(c["size_bytes"] / 1e6, 2),
            "cost": c.get("cost"), "cost by": (c.get("cost_detail") or {}).get("cost_source") or _source(rec),
            "meets budget": "yes" if c.get("meets_budget") else "no",
            "role": ", ".join(roles), "reason": c.get("reason") or "",
        })
    float_name = (rec.get("references") or {}).get("float32")
    if not any(r["candidate"] == float_name and r["status"] == "measured" for r in rows):
        rows.insert(0, {"search": label(rec), "candidate": FLOAT_ROW, "status": "measured", "AP": _points(float_ap),
                        "ΔAP": 0.0 if float_ap is not None else None, "p50 ms": fl.get("p50_ms"),
                        "size MB": None if fl.get("size_bytes") is None else round(fl["size_bytes"] / 1e6, 2),
                        "cost": fl.get("cost"), "cost by": _source(rec), "meets budget": "yes",
                        "role": "float32 reference",
                        "reason": "the float model the drop is measured from"})
    for axis, col in (("p50 ms", "front (latency)"), ("cost", "front (cost)")):
        usable = [i for i, r in enumerate(rows) if r["status"] == "measured" and r[axis] is not None
                  and r["ΔAP"] is not None]
        on = {usable[j] for j in pareto_front([(float(rows[i][axis]), rows[i]["ΔAP"]) for i in usable])}
        for i, r in enumerate(rows):
            r[col] = "yes" if i in on else ""
    return rows


COLUMNS = ["search", "candidate", "status", "AP", "ΔAP", "p50 ms", "size MB", "cost", "cost by", "meets budget",
           "front (latency)", "front (cost)", "role", "reason"]


def table(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Every candidate of the newest search per model, target and validation set."""
    rows = [row for rec in sorted(latest_searches(records), key=label) for row in candidates(rec)]
    return pd.DataFrame(rows, columns=COLUMNS)


def _image_set(block: dict | None) -> str:
    """'N images of SET': a validation block names its split and count; a calibration block (harness quantize)
    its folder and `count` (or the list of `files`)."""
    block = block or {}
    count = next((block[k] for k in ("image_count", "images", "count") if block.get(k) is not None), None)
    if count is None and block.get("files") is not None:
        count = block["files"] if isinstance(block["files"], int) else len(block["files"])
    name = block.get("split") or (Path(block["dir"]).name if block.get("dir") else None)
    return f"{count if count is not None else '?'} images of {name or '?'}"


def summary(records: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per search: the budget, the image sets (and whether they overlap), the outcome."""
    rows = []
    for rec in sorted(latest_searches(records), key=label):
        cands = rec.get("candidates", [])
        by_name = {c.get("name"): c for c in cands}
        pick = rec.get("chosen") or rec.get("closest")
        c = by_name.get(pick, {})
        calib = rec.get("calibration") or {}
        status = [c_.get("status") for c_ in cands]
        rows.append({
            "search": label(rec), "max drop": rec.get("max_drop"),
            "validate": _image_set(rec.get("validate")),
            "calibration": _image_set(calib),
            "overlap": "YES (calibrated on validation images)" if calib.get("overlap") else "no",
            "float AP": _points((rec.get("float") or {}).get("ap")),
            "outcome": f"chosen {pick}" if rec.get("chosen") else
            (f"none within budget; closest {pick}" if pick else "none within budget"),
            "ΔAP": _delta(c, (rec.get("float") or {}).get("ap")) if c else None,
            "p50 ms": c.get("p50_ms"), "size MB": None if c.get("size_bytes") is None else
            round(c["size_bytes"] / 1e6, 2),
            "candidates": f"{status.count('measured')} measured, {status.count('skipped')} skipped, "
                          f"{status.count('failed')} failed",
        })
    return pd.DataFrame(rows)
