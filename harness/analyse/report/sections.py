"""The report page: the headline first, then every detail section folded under its heading.

Wide tables are shown split by topic (the CSV and JSON keep each table whole); what is still wider than
the page scrolls sideways in its own box, so the page itself never does.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from harness.analyse.report import headline, render
from harness.analyse.report.tables import SIZE_STATS, STATS
from harness.records.selection import latest_evals, model_name, quant_pairs
from harness.records.types import RunRecord

MAX_GALLERY_PAIRS = 2  # the largest drops; each pair adds about 1 MB of pictures to the page
NPU_NOTE = ("Estimated by the compiler the board runs (the \"estimate by\" column names it and its version), "
            "not measured on a board; ops left to the CPU are index:OPTYPE of the input model, outside the estimate.")


def _cols(df: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    return df[[c for c in columns if c in df.columns]] if len(df) else df


def gallery(records: Sequence[RunRecord], n: int, base_dir: Path | None, threshold: float) -> str:
    """Float vs quantized pictures, worst disagreement first; a single model's where there is no pair."""
    if n <= 0:
        return '<p class="note">gallery disabled (--gallery 0)</p>'
    from harness.analyse.report import gallery as pictures

    evals = latest_evals(records)
    pairs = sorted(quant_pairs(evals), key=lambda p: p[1]["results"]["stats"]["AP"] - p[0]["results"]["stats"]["AP"])
    blocks = []
    for f, q in pairs[:MAX_GALLERY_PAIRS]:
        items = pictures.pair_gallery(f, q, n=n, base_dir=base_dir, score_threshold=threshold)
        why = pictures.missing_files(f, base_dir) or pictures.missing_files(q, base_dir)
        blocks.append(_gallery_block(f"{model_name(f)} vs {model_name(q)}", items,
                                     why or "no image both records scored could be read"))
    if not pairs and evals:
        items = pictures.single_gallery(evals[0], n=n, base_dir=base_dir, score_threshold=threshold)
        blocks.append(_gallery_block(model_name(evals[0]), items, pictures.missing_files(evals[0], base_dir)
                                     or "no image the record scored could be read"))
    return "".join(blocks) or '<p class="note">no eval records</p>'


def _gallery_block(title: str, items: list, missing: str) -> str:
    if not items:
        return f"<h4>{html.escape(title)}</h4><p class='note'>no pictures: {html.escape(missing)}</p>"
    figs = "".join(f"<figure>{render.img(it.png, it.title)}<figcaption>{html.escape(it.title)}</figcaption></figure>"
                   for it in items)
    return f"<h4>{html.escape(title)}</h4><div class='gallery'>{figs}</div>"


def _accuracy(t: Mapping[str, pd.DataFrame]) -> str:
    acc = t["accuracy"]
    return ('<p class="note">Newest run per model, runtime, protocol and image set. "like for like" is NO where the '
            "split, image count or protocol differs from the published number's (e.g. a mirror subset of val2017).</p>"
            + render.html_table(_cols(acc, ["model", "runtime", "images", "split", "AP", "AP CI", "published AP",
                                            "published split", "published images", "diff", "like for like",
                                            "why not", "within sampling error"]), {"like for like": "NO"})
            + "<h3>Every COCO stat</h3>"
            + render.html_table(_cols(acc, ["model", "precision", "runtime", "protocol", "host", *STATS]))
            + "<h3>Where the published numbers come from</h3>"
            + render.html_table(_cols(acc, ["model", "published AP", "source"])))


def _quant(t: Mapping[str, pd.DataFrame], figs: Mapping[str, bytes | None], gallery_html: str,
           min_instances: int) -> str:
    q = t["quant_overall"]
    quant_figs = "".join(render.img(png, name) for name, png in figs.items() if name.startswith("delta_ap"))
    per_class = t["quant_per_class"]
    worst = per_class.groupby("quantized", sort=False).head(12) if len(per_class) else per_class
    return ('<h3>ΔAP and its intervals</h3><p class="note">ΔX = quantized - float, in AP points. Intervals are '
            "bootstrap intervals over the images: each model's own, and ΔAP's paired one (both models resampled "
            "on the same images, so what makes an image hard for both cancels); the paired interval is the one "
            "that says whether quantization lost accuracy, and it is much narrower than the two separate ones "
            "suggest (the unpaired column: as if they had been resampled apart).</p>"
            + render.html_table(_cols(q, ["float", "quantized", "images", "AP float", "AP float CI", "AP quant",
                                          "AP quant CI", "ΔAP", "ΔAP CI paired", "ΔAP CI unpaired",
                                          "CI widths float/quant/paired", "CI"]))
            + "<h3>AP50, AP75 and per object size</h3>"
            + render.html_table(_cols(q, ["float", "quantized", *(f"{k} {w}" for k in SIZE_STATS[1:]
                                                                  for w in ("float", "quant")),
                                          *(f"Δ{k}" for k in SIZE_STATS[1:])]))
            + '<h3>Output error per head</h3><p class="note"><code>harness compare quant FLOAT QUANT</code> on real '
            "images: cosine similarity, MSE and SNR of each head's quantized output against the float one.</p>"
            + render.html_table(t["quant_error_heads"])
            + "<h3>Where the error starts and grows</h3>" + render.html_table(t["quant_error_summary"])
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
            + render.html_table(_cols(worst, ["quantized", "class", "boxes", "images", "AP float", "AP quant", "ΔAP",
                                              "ΔAP50", "ΔAPs", "ΔAPm", "ΔAPl", "few boxes"]), muted="few boxes"))


def _latency(t: Mapping[str, pd.DataFrame], figs: Mapping[str, bytes | None]) -> str:
    lat = t["latency"]
    return (render.html_table(_cols(lat, ["model", "host", "board", "threads", "delegate", "invoke p50 ms",
                                          "invoke p90 ms", "invoke p99 ms", "invoke n", "e2e p50 ms", "e2e p90 ms",
                                          "e2e p99 ms", "e2e n"]))
            + "<h3>Start-up, memory and runtime</h3>"
            + render.html_table(_cols(lat, ["model", "host", "cores", "threads", "runtime", "first inference ms",
                                            "peak RSS MiB"]))
            + render.img(figs.get("latency_distribution"), "latency distribution"))


def tradeoff(t: Mapping[str, pd.DataFrame], figs: Mapping[str, bytes | None]) -> str:
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


def page(t: Mapping[str, pd.DataFrame], figs: Mapping[str, bytes | None], title: str, intro: str, gallery_html: str,
         min_instances: int, errors_html: str = "") -> str:
    """The whole HTML page: the headline (open), then the details (folded)."""
    sections = [
        ("Accuracy vs published baselines", _accuracy(t)),
        ("Published baselines and their provenance",
         render.html_table(t["baselines"], {"measured here": "no run yet"})),
        ("Float vs quantized: how much is lost, where in the network, on which images",
         _quant(t, figs, gallery_html, min_instances)),
        *([("What quantization broke, in detection terms: error types, confusions, pictures", errors_html)]
          if errors_html else []),
        *([("Quantization search: accuracy against speed, and the Pareto front", tradeoff(t, figs))]
          if len(t["tradeoff"]) else []),
        *([("Why a mAP may not match: harness doctor",
            '<p class="note">Each finding: AP as measured and after its correction (AP points), the evidence and '
            "the fix, ranked by AP gain; a flag has no AP after.</p>" + render.html_table(t["doctor"]))]
          if len(t["doctor"]) else []),
        *([("NPU compilers' estimates (harness compile)",
            f'<p class="note">{html.escape(NPU_NOTE)}</p>' + render.html_table(t["npu_compile"]))]
          if len(t["npu_compile"]) else []),
        ("Latency per model, host, threads and delegate", _latency(t, figs)),
        ("Accuracy vs latency", render.html_table(t["ap_vs_latency"])
         + render.img(figs.get("ap_vs_latency"), "AP vs latency")),
        ("Hosts", render.html_table(t["hosts"])),
    ]
    return render.page(title, intro, headline.section(t), sections)
