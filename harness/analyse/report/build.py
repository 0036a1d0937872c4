"""`harness report`: tables, plots, gallery, HTML, Markdown, CSV/JSON and dashboard files from run records.

Measuring and reporting meet only through the records: this module never runs a model. Everything it
writes goes through a temporary file and a rename, so a report being regenerated is never half-read.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.analyse.report import dashboard, plots, render, tables, tradeoff
from harness.common.fileio import write_bytes_atomic, write_json_atomic, write_text_atomic
from harness.records.selection import latest_evals, latest_searches, model_name, quant_pairs
from harness.records.types import RunRecord

ACCURACY_MD = ["model", "runtime", "protocol", "images", "AP", "AP CI", "AP50", "AP75", "published AP",
               "published images", "diff", "like for like", "within sampling error"]
LATENCY_MD = ["model", "host", "board", "threads", "delegate", "invoke p50 ms", "invoke p90 ms", "invoke p99 ms",
              "e2e p50 ms"]
MAX_GALLERY_PAIRS = 2  # the largest drops; each pair adds about 1 MB of pictures to the page
QUANT_MD = ["float", "quantized", "images", "AP float", "AP float CI", "AP quant", "AP quant CI", "ΔAP",
            "ΔAP CI paired", "ΔAPs", "ΔAPm", "ΔAPl"]
TRADEOFF_MD = ["candidate", "status", "AP", "ΔAP", "p50 ms", "size MB", "cost", "cost by", "meets budget",
               "front (latency)", "front (cost)", "role"]
TRADEOFF_SUMMARY_MD = ["search", "max drop", "validate", "calibration", "overlap", "float AP", "outcome", "ΔAP",
                       "p50 ms", "size MB", "candidates"]
_NPU_NOTE = ("Estimated by the compiler the board runs (the \"estimate by\" column names it and its version), "
             "not measured on a board; ops left to the CPU are index:OPTYPE of the input model, outside the estimate.")
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


def _gallery(records: Sequence[RunRecord], n: int, base_dir: Path | None, threshold: float) -> str:
    """Float vs quantized pictures, worst disagreement first; a single model's where there is no pair."""
    if n <= 0:
        return '<p class="note">gallery disabled (--gallery 0)</p>'
    from harness.analyse.report import gallery
    evals = latest_evals(records)
    pairs = sorted(quant_pairs(evals), key=lambda p: p[1]["results"]["stats"]["AP"] - p[0]["results"]["stats"]["AP"])
    blocks = []
    for f, q in pairs[:MAX_GALLERY_PAIRS]:
        items = gallery.pair_gallery(f, q, n=n, base_dir=base_dir, score_threshold=threshold)
        blocks.append(_gallery_block(f"{model_name(f)} vs {model_name(q)}", items,
                                     "detections or images of these records are not available here"))
    if not pairs and evals:
        items = gallery.single_gallery(evals[0], n=n, base_dir=base_dir, score_threshold=threshold)
        blocks.append(_gallery_block(model_name(evals[0]), items, "detections or images not available here"))
    return "".join(blocks) or '<p class="note">no eval records</p>'


def _gallery_block(title: str, items: list, missing: str) -> str:
    if not items:
        return f"<h4>{html.escape(title)}</h4><p class='note'>{html.escape(missing)}</p>"
    figs = "".join(f"<figure>{render.img(it.png, it.title)}<figcaption>{html.escape(it.title)}</figcaption></figure>"
                   for it in items)
    return f"<h4>{html.escape(title)}</h4><div class='gallery'>{figs}</div>"


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
    }
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
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    written.append(write_json_atomic(out / "report.json", {
        "schema": "centernet-harness/report", "schema_version": 1, "created": created,
        "records": len(records), "tables": {k: json.loads(df.to_json(orient="records")) for k, df in t.items()},
    }, indent=1))

    md = _markdown(t, records, title)
    written.append(write_text_atomic(out / "report.md", md))
    page = _html(t, figs, records, title, created, _gallery(records, gallery_images, base_dir, gallery_threshold),
                 min_instances)
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
             "### Accuracy vs published baselines\n", render.markdown_table(t["accuracy"], ACCURACY_MD)]
    unlike = t["accuracy"][t["accuracy"]["like for like"] == "NO"] if len(t["accuracy"]) else t["accuracy"]
    if len(unlike):
        parts.append("Not like for like: " + "; ".join(sorted(set(unlike["why not"]))) + ".\n")
    parts += ["### Float vs quantized\n", render.markdown_table(t["quant_overall"], QUANT_MD)]
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
        parts += ["### NPU compilers' estimates\n", render.markdown_table(t["npu_compile"]), _NPU_NOTE + "\n"]
    parts += ["### Latency\n", render.markdown_table(t["latency"], LATENCY_MD)]
    return "\n".join(parts)


def _html(t: dict, figs: dict, records: Sequence[RunRecord], title: str, created: str, gallery_html: str,
          min_instances: int = MIN_INSTANCES) -> str:
    intro = (f'<p class="note">Generated {created} from {len(records)} run records ({_kinds(records)}) '
             f"on {_n(len(t['hosts']), 'host')}. AP in points (COCO AP@[.5:.95] x 100); latency in ms.</p>")
    quant_figs = "".join(render.img(png, name) for name, png in figs.items() if name.startswith("delta_ap"))
    per_class = t["quant_per_class"]
    worst = per_class.groupby("quantized", sort=False).head(12) if len(per_class) else per_class
    sections = [
        ("Accuracy vs published baselines",
         '<p class="note">Newest run per model, runtime, protocol and image set. "like for like" is NO where the '
         "split, image count or protocol differs from the published number's (e.g. a mirror subset of val2017).</p>"
         + render.html_table(t["accuracy"], {"like for like": "NO"})),
        ("Published baselines and their provenance",
         render.html_table(t["baselines"], {"measured here": "no run yet"})),
        ("Float vs quantized: how much is lost, where in the network, on which images",
         '<h3>ΔAP overall and per object size</h3><p class="note">ΔX = quantized - float, in AP points. '
         "Intervals are bootstrap intervals over the images: each model's own, and ΔAP's paired one (both "
         "models resampled on the same images, so what makes an image hard for both cancels); the paired "
         "interval is the one that says whether quantization lost accuracy, and it is much narrower than the "
         "two separate ones suggest (the unpaired column: as if they had been resampled apart).</p>"
         + render.html_table(t["quant_overall"])
         + '<h3>Output error per head</h3><p class="note"><code>harness compare quant FLOAT QUANT</code> on real '
         "images: cosine similarity, MSE and SNR of each head's quantized output against the float one.</p>"
         + render.html_table(t["quant_error_heads"])
         + '<h3>Where the error starts and grows</h3>' + render.html_table(t["quant_error_summary"])
         + '<h3>Layers that add the error</h3><p class="note">Ranked by their share of the summed error the '
         'layers add; accumulated SNR compares each output with the float model\'s; "first bad" marks the first '
         "layer, in execution order, past the threshold.</p>"
         + render.html_table(t["quant_error_layers"], {"first bad": "yes"})
         + '<h3 id="gallery">Gallery</h3><p class="note">Ground truth (dashed) beside each model\'s boxes above '
         "the display threshold; the images where the two models disagree most come first.</p>" + gallery_html
         + f'<h3>ΔAP per class</h3><div class="grid">{quant_figs}</div>'
         + "<h3>Largest drops per class (all classes in tables/quant_per_class.csv)</h3>"
         + f'<p class="note">Ranked among classes with at least {min_instances} ground-truth boxes; classes with '
         "fewer are greyed out and listed after them: a ΔAP from a handful of boxes is noise.</p>"
         + render.html_table(worst, muted="few boxes")),
        *([("Quantization search: accuracy against speed, and the Pareto front", _tradeoff_html(t, figs))]
          if len(t["tradeoff"]) else []),
        *([("Why a mAP may not match: harness doctor",
             '<p class="note">Each finding: AP as measured and after its correction (AP points), the evidence and '
             "the fix, ranked by AP gain; a flag has no AP after.</p>" + render.html_table(t["doctor"]))]
          if len(t["doctor"]) else []),
        *([("NPU compilers' estimates (harness compile)",
             f'<p class="note">{html.escape(_NPU_NOTE)}</p>' + render.html_table(t["npu_compile"]))]
          if len(t["npu_compile"]) else []),
        ("Latency per model, host, threads and delegate",
         render.html_table(t["latency"]) + render.img(figs.get("latency_distribution"), "latency distribution")),
        ("Accuracy vs latency", render.html_table(t["ap_vs_latency"])
         + render.img(figs.get("ap_vs_latency"), "AP vs latency")),
        ("Hosts", render.html_table(t["hosts"])),
    ]
    return render.page(title, sections, intro)


def _tradeoff_html(t: dict, figs: dict) -> str:
    plots_html = "".join(render.img(png, name) for name, png in figs.items() if name.startswith("tradeoff_"))
    return ('<p class="note">Each candidate precision plan of a search (<code>harness quantize --max-drop</code>): '
            "ΔAP (candidate - float, AP points on the validation images) against model-only p50 on the host the "
            "search ran on, marker area by file size. The Pareto front holds the candidates no other one beats "
            "in both speed and accuracy; for an NPU target the second panel ranks by the target's cost, which is "
            "what the search chose by: Vela's estimate for an Ethos-U board (imx93), a modelled figure otherwise "
            '(imx8mp-vx); the "cost by" column says which. "overlap" YES means calibration images were also validation '
            "images, which flatters the AP.</p>"
            + render.html_table(t["tradeoff_summary"], {"overlap": "YES (calibrated on validation images)"})
            + plots_html + render.html_table(t["tradeoff"], {"meets budget": "no"}))
