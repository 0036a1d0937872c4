"""The report's first screen: the three questions a reader opens it with, each answered by one narrow table.

1. Does each model measure what was published? Its AP with its interval, the published AP, and the verdict:
   like for like or why not, and whether the two agree within sampling error.
2. What did each quantized sibling lose? ΔAP against its float model with the paired interval, and whether
   that interval lies below zero.
3. How fast is each model on each host? Model-only and end-to-end p50, one column per host.

Everything else (every stat, every column, the plots and pictures) stays in the detail sections below.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.analyse.report import render
from harness.records.selection import latest_benches, latest_evals, model_name, quant_pairs
from harness.records.types import RunRecord

ACCURACY = ["model", "runtime", "images", "AP", "AP interval", "published AP", "diff", "like for like",
            "within sampling error"]
QUANT = ["float", "quantized", "images", "AP float", "AP quant", "ΔAP", "paired interval", "verdict"]


def _points(x: float | None) -> float | None:
    return None if x is None or x < 0 else round(100.0 * float(x), 2)


def _interval(lo: float | None, hi: float | None, level: float | None, scale: float = 100.0) -> str:
    if lo is None or hi is None or lo != lo or hi != hi:
        return ""
    lead = f"{100 * level:g}% " if level else ""
    return f"{lead}[{scale * lo:.2f}, {scale * hi:.2f}]"


def accuracy(records: Sequence[RunRecord]) -> pd.DataFrame:
    """Per model (newest eval per model, runtime, protocol and image set): AP and its interval beside the
    published AP, and the record's own verdicts (eval wrote them; the report does not judge again)."""
    rows = []
    for rec in sorted(latest_evals(records), key=lambda r: (model_name(r), str(r["backend"].get("runtime")))):
        cmp = rec.get("comparison") or {}
        base = cmp.get("baseline") or {}
        interval: Mapping[str, Any] = rec["results"].get("interval") or {}  # stat -> interval, and "level"
        ap = interval.get("AP") or {}
        verdict = cmp.get("interval_verdict") or {}
        reasons = "; ".join(cmp.get("reasons", []))
        like = "yes" if cmp.get("like_for_like") else f"no: {reasons}" if reasons else "no"
        rows.append({"model": model_name(rec), "runtime": rec["backend"].get("runtime"),
                     "images": rec["dataset"].get("image_count"), "AP": _points(rec["results"]["stats"].get("AP")),
                     "AP interval": _interval(ap.get("lo"), ap.get("hi"), interval.get("level")),
                     "published AP": base.get("ap"), "diff": cmp.get("difference"),
                     "like for like": like if base else "no published AP",
                     "within sampling error": verdict.get("verdict", "")})
    return pd.DataFrame(rows, columns=ACCURACY)


def quant(records: Sequence[RunRecord], paired: Mapping[tuple[str, str], Any]) -> pd.DataFrame:
    """Per float/quantized pair: ΔAP (quantized - float, points) with its paired interval and what it says.

    `paired` maps (float, quantized) to harness.analyse.paired.Paired: its delta, or the reason there is none.
    """
    rows = []
    for f, q in quant_pairs(latest_evals(records)):
        p = paired.get((model_name(f), model_name(q)))
        d = getattr(p, "delta", None)
        fa, qa = _points(f["results"]["stats"].get("AP")), _points(q["results"]["stats"].get("AP"))
        lo, hi = (d["AP"].get("lo"), d["AP"].get("hi")) if d else (None, None)
        rows.append({"float": model_name(f), "quantized": model_name(q), "images": q["dataset"].get("image_count"),
                     "AP float": fa, "AP quant": qa,
                     "ΔAP": None if fa is None or qa is None else round(qa - fa, 2),
                     "paired interval": _interval(lo, hi, d["level"]) if d else "",
                     "verdict": _delta_verdict(lo, hi) if d else f"no paired interval: {getattr(p, 'reason', None)}"})
    return pd.DataFrame(rows, columns=QUANT)


def _delta_verdict(lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None:
        return "no interval"
    if hi < 0:
        return "lost AP (whole interval below 0)"
    if lo > 0:
        return "gained AP (whole interval above 0)"
    return "no change shown (interval spans 0)"


def host_label(board: str | None, fingerprint: str) -> str:
    return f"{board or 'host'} ({fingerprint[:6]})"


def latency(records: Sequence[RunRecord]) -> pd.DataFrame:
    """p50 in ms, model only / end to end: a row per model and settings, a column per host."""
    cells: dict[tuple[str, str], dict[str, str]] = {}
    hosts: dict[str, None] = {}
    for rec in sorted(latest_benches(records), key=lambda r: (model_name(r), r["host"]["fingerprint"])):
        h, s = rec["host"], rec.get("settings") or {}
        column = host_label(h.get("board") or h.get("cpu_model"), h["fingerprint"])
        hosts[column] = None
        setting = f"threads {s.get('threads') or 'default'}" + (f", {s['delegate']}" if s.get("delegate") else "")
        p50 = [rec["phases"][phase]["stats"]["p50_s"] * 1e3 for phase in ("model_only", "end_to_end")]
        cells.setdefault((model_name(rec), setting), {})[column] = " / ".join(f"{v:.1f}" for v in p50)
    rows = [{"model": m, "settings": s, **{h: by_host.get(h, "–") for h in hosts}} for (m, s), by_host in cells.items()]
    return pd.DataFrame(rows, columns=["model", "settings", *hosts])


def tables(records: Sequence[RunRecord], paired: Mapping[tuple[str, str], Any]) -> dict[str, pd.DataFrame]:
    return {"headline_accuracy": accuracy(records), "headline_quant": quant(records, paired),
            "headline_latency": latency(records)}


_QUESTIONS: tuple[tuple[str, str, str, dict[str, object]], ...] = (
    ("headline_accuracy", "Measured vs published AP",
     "AP in points with its bootstrap interval over the images; the verdicts are the eval's own: like for like "
     "(same split, image count and protocol as the published number) and whether the two agree within sampling "
     "error.", {"within sampling error": "inconsistent"}),
    ("headline_quant", "What each quantized sibling lost",
     "ΔAP = quantized - float in points; the paired interval resamples both models on the same images (the one "
     "to read: the two models' own intervals overlap far more than the difference varies).",
     {"verdict": "lost AP (whole interval below 0)"}),
    ("headline_latency", "Latency per host",
     "p50 in ms, model only / end to end (decode and pre- and post-processing included); one column per host.",
     {}),
)


def section(t: Mapping[str, pd.DataFrame]) -> str:
    """The first screen's HTML: the three tables, each under its question and a one-line note."""
    parts = []
    for name, question, note, flag in _QUESTIONS:
        parts.append(f'<div class="card"><h3>{html.escape(question)}</h3><p class="note">{html.escape(note)}</p>'
                     + render.html_table(t[name], flag, empty=_EMPTY[name]) + "</div>")
    return f'<section id="headline" class="headline"><h2>At a glance</h2>{"".join(parts)}</section>'


_EMPTY = {"headline_accuracy": "no eval records", "headline_quant": "no float and quantized sibling evaluated "
          "on the same images", "headline_latency": "no bench records"}


def markdown(t: Mapping[str, pd.DataFrame]) -> list[str]:
    """The same three tables for a CI step summary."""
    parts = ["### At a glance\n"]
    for name, question, _, _ in _QUESTIONS:
        parts += [f"{question}:\n", render.markdown_table(t[name]) if len(t[name]) else f"_{_EMPTY[name]}_\n"]
    return parts
