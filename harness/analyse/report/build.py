"""`harness report`: tables, plots, gallery, HTML, Markdown, CSV/JSON and dashboard files from run records.

Measuring and reporting meet only through the records: this module never runs a model. Everything it
writes goes through a temporary file and a rename, so a report being regenerated is never half-read.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analyse.report import dashboard, headline, plots, render, sections, tables, tradeoff
from harness.analyse.report import errors as error_views
from harness.common.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from harness.records.selection import latest_evals, latest_searches, model_name, quant_pairs
from harness.records.types import RunRecord

ACCURACY_MD = ["model", "runtime", "protocol", "images", "AP", "AP CI", "AP50", "AP75", "published AP",
               "published images", "diff", "like for like", "within sampling error"]
LATENCY_MD = ["model", "host", "board", "threads", "delegate", "invoke p50 ms", "invoke p90 ms", "invoke p99 ms",
              "e2e p50 ms"]
QUANT_MD = ["float", "quantized", "images", "AP float", "AP float CI", "AP quant", "AP quant CI", "ΔAP",
            "ΔAP CI paired", "ΔAPs", "ΔAPm", "ΔAPl"]
TRADEOFF_MD = ["candidate", "status", "AP", "ΔAP", "p50 ms", "size MB", "cost", "cost by", "meets budget",
               "front (latency)", "front (cost)", "role"]
TRADEOFF_SUMMARY_MD = ["search", "max drop", "validate", "calibration", "overlap", "float AP", "outcome", "ΔAP",
                       "p50 ms", "size MB", "candidates"]
MIN_INSTANCES = 10  # per-class rows from fewer ground-truth boxes are greyed out, not ranked


@dataclass
class Report:
    out_dir: Path
    html: Path
    markdown: Path
    markdown_text: str
    files: list[Path] = field(default_factory=list)
    tables: dict = field(default_factory=dict)


def _hosts(records: Sequence[RunRecord]) -> list[dict]:
    seen: dict[str, dict] = {}
    for r in records:
        h = r["host"]
        seen.setdefault(h["fingerprint"], {
            "host": h["fingerprint"], "board": h.get("board") or "", "cpu": h.get("cpu_model"),
            "machine": h.get("machine"), "cores": h.get("cores"),
            "memory GiB": round(memory / 2**30, 1) if (memory := h.get("memory_bytes")) else None,
            "os": h.get("os_release"), "records": 0})
        seen[h["fingerprint"]]["records"] += 1
    return list(seen.values())


def _paired(records: Sequence[RunRecord], base_dir: Path | None, resamples: int) -> tuple[dict, dict]:
    """Paired ΔAP intervals of the quant pairs, and class counts for float records that lack them."""
    from harness.analyse.paired import MatchCache, counts_from_ground_truth, paired_interval

    cache = MatchCache()
    paired, counts = {}, {}
    for f, q in quant_pairs(latest_evals(records)):
        paired[model_name(f), model_name(q)] = paired_interval(f, q, base_dir, resamples=resamples, cache=cache)
        per_class = f["results"].get("per_class") or {}
        if per_class and not any("instances" in v for v in per_class.values()) and model_name(f) not in counts:
            counts[model_name(f)] = counts_from_ground_truth(f, base_dir, cache)
    return paired, counts


def build_report(records: Sequence[RunRecord], out_dir: str | Path, *, gallery_images: int = 4,
                 base_dir: Path | None = None, title: str = "CenterNet harness report",
                 gallery_threshold: float = 0.3, ci_resamples: int = 1000,
                 min_instances: int = MIN_INSTANCES) -> Report:
    out = Path(out_dir)
    paired, counts = _paired(records, base_dir, ci_resamples)
    t = {
        "accuracy": tables.accuracy(records),
        "baselines": tables.baselines(records),
        "quant_overall": tables.quant_overall(records, paired),
        "quant_per_class": tables.quant_per_class(records, min_instances, counts),
        "quant_error_heads": tables.quant_error_heads(records),
        "quant_error_summary": tables.quant_error_summary(records),
        "quant_error_layers": tables.quant_error_layers(records),
        "latency": tables.latency(records),
        "ap_vs_latency": tables.ap_vs_latency(records),
        "doctor": tables.doctor(records),
        "npu_compile": tables.npu_compile(records),
        "tradeoff": tradeoff.table(records),
        "tradeoff_summary": tradeoff.summary(records),
        **headline.tables(records, paired),
    }
    shifts = error_views.shifts(records, base_dir)
    t.update(error_views.tables(records, shifts))
    import pandas as pd

    t["hosts"] = pd.DataFrame(_hosts(records))
    figs = {
        "ap_vs_latency": plots.ap_vs_latency(t["ap_vs_latency"]),
        "latency_distribution": plots.latency_distributions(records),
    }
    for rec in latest_searches(records):
        rows = t["tradeoff"][t["tradeoff"]["search"] == tradeoff.label(rec)]
        figs[f"tradeoff_{_slug(tradeoff.label(rec))}"] = plots.tradeoff(rows, rec.get("max_drop"),
                                                                         with_cost=rec.get("target") != "cpu")
    for q in t["quant_overall"].get("quantized", []):
        figs[f"delta_ap_per_class_{q}"] = plots.per_class_delta(t["quant_per_class"], q)

    written: list[Path] = []
    for name, df in t.items():
        written.append(write_text_atomic(out / "tables" / f"{name}.csv", df.to_csv(index=False)))
    for name, png in figs.items():
        if png:
            written.append(write_bytes_atomic(out / "plots" / f"{name}.png", png))
    written.append(write_json_atomic(out / "benchmark-smaller-is-better.json", dashboard.smaller_is_better(records),
                                     indent=1))
    written.append(write_json_atomic(out / "benchmark-bigger-is-better.json", dashboard.bigger_is_better(records),
                                     indent=1))
    written.append(write_json_atomic(out / "bencher-metrics.json", dashboard.bencher_metrics(records), indent=1))
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    written.append(write_json_atomic(out / "report.json", {
        "schema": "centernet-harness/report", "schema_version": 1, "created": created,
        "records": len(records), "tables": {k: json.loads(df.to_json(orient="records")) for k, df in t.items()},
    }, indent=1))

    md = _markdown(t, records, title)
    written.append(write_text_atomic(out / "report.md", md))
    intro = (f'<p class="note">Generated {created} from {len(records)} run records ({_kinds(records)}) '
             f"on {_n(len(t['hosts']), 'host')}. AP in points (COCO AP@[.5:.95] x 100); latency in ms.</p>")
    errors_html = error_views.section(t, error_views.gallery(records, shifts, base_dir, gallery_threshold)
                                      if gallery_images > 0 else "")
    page = sections.page(t, figs, title, intro,
                         sections.gallery(records, gallery_images, base_dir, gallery_threshold), min_instances,
                         errors_html)
    html_path = write_text_atomic(out / "report.html", page)
    written.append(html_path)
    return Report(out, html_path, out / "report.md", md, written, t)


def _slug(text: str) -> str:
    """A file name from a label (model names and targets may hold '/' or spaces)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _kinds(records: Sequence[RunRecord]) -> str:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["kind"]] = counts.get(r["kind"], 0) + 1
    return ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def _markdown(t: dict, records: Sequence[RunRecord], title: str) -> str:
    parts = [f"## {title}\n", f"{len(records)} records ({_kinds(records)}) from {_n(len(t['hosts']), 'host')}.\n",
             *headline.markdown(t), "### Accuracy vs published baselines\n",
             render.markdown_table(t["accuracy"], ACCURACY_MD)]
    unlike = t["accuracy"][t["accuracy"]["like for like"] == "NO"] if len(t["accuracy"]) else t["accuracy"]
    if len(unlike):
        parts.append("Not like for like: " + "; ".join(sorted(set(unlike["why not"]))) + ".\n")
    parts += ["### Float vs quantized\n", render.markdown_table(t["quant_overall"], QUANT_MD)]
    parts += [f"{r['quantized']}: {r['what it broke']}\n" for r in t["error_headline"].to_dict("records")]
    if len(t["quant_error_summary"]):
        parts.append(render.markdown_table(t["quant_error_summary"], ["quantized", "images", "error starts at",
                                                                      "op types adding most error"]))
    if len(t["doctor"]):
        parts += ["### Why a mAP may not match (harness doctor)\n",
                  render.markdown_table(t["doctor"], ["subject", "rank", "finding", "AP before", "AP after", "fix"])]
    if len(t["tradeoff"]):
        parts += ["### Quantization search: the trade-off\n", render.markdown_table(t["tradeoff_summary"],
                                                                                   TRADEOFF_SUMMARY_MD)]
        for search, rows in t["tradeoff"].groupby("search", sort=False):
            parts += [f"Candidates of {search}:\n", render.markdown_table(rows, TRADEOFF_MD)]
    if len(t["npu_compile"]):
        parts += ["### NPU compilers' estimates\n", render.markdown_table(t["npu_compile"]), sections.NPU_NOTE + "\n"]
    parts += ["### Latency\n", render.markdown_table(t["latency"], LATENCY_MD)]
    return "\n".join(parts)
