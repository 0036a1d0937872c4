"""The report's error-type views (harness.scoring.errors): each eval's TIDE decomposition per object size,
each float / quantized pair's change per error type with its paired interval and the sentence that joins
it to the op where the quantized model's error starts, both models' top class confusions, and the
pictures of the images where the quantized model gained most of each error.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from harness.analyse.report import render
from harness.records.selection import latest_evals, model_name, of_kind, quant_pairs
from harness.records.types import RunRecord
from harness.scoring.errors import ERROR_NAMES, ERROR_TYPES, SIZES, SPECIAL_TYPES

_COLS = {t: f"{t} ({ERROR_NAMES[t]})" for t in (*ERROR_TYPES, *SPECIAL_TYPES)}


def _pts(v: object) -> float | None:
    return None if v is None else round(100 * float(v), 2)  # type: ignore[arg-type]


def shifts(records: Sequence[RunRecord], base_dir: Path | None, cache=None) -> dict:
    """{(float name, quant name): error_shift block or reason} for every quant pair of the newest evals."""
    from harness.analyse.error_shift import error_shift
    from harness.analyse.paired import MatchCache

    cache = cache if cache is not None else MatchCache()
    return {(model_name(f), model_name(q)): error_shift(f, q, base_dir, cache=cache)
            for f, q in quant_pairs(latest_evals(records))}


def tables(records: Sequence[RunRecord], shift: Mapping) -> dict[str, pd.DataFrame]:
    from harness.analyse.error_shift import first_bad, headline

    rows = []
    for r in latest_evals(records):
        for size, block in ((r["results"].get("errors") or {}).get("sizes") or {}).items():
            rows.append({"model": model_name(r), "size": size, "AP50": _pts(block.get("AP50")),
                         **{_COLS[t]: _pts(block["errors"].get(t)) for t in ERROR_TYPES},
                         **{_COLS[t]: _pts(block["special"].get(t)) for t in SPECIAL_TYPES}})
    compares = {(c["float_model"].get("name"), c["quant_model"].get("name")): c
                for c in sorted(of_kind(records, "quant_compare"), key=lambda c: str(c.get("created")))}
    change, lines, confusions = [], [], []
    for (fname, qname), s in shift.items():
        if not isinstance(s, dict):
            lines.append({"float": fname, "quantized": qname, "what it broke": f"no error views: {s}"})
            continue
        lines.append({"float": fname, "quantized": qname,
                      "what it broke": headline(s, first_bad(compares.get((fname, qname), {})), qname)})
        for size in SIZES:
            block = s["paired"]["sizes"].get(size)
            if not block:
                continue
            for t in (*ERROR_TYPES, *SPECIAL_TYPES):
                c = block[t]
                change.append({"float": fname, "quantized": qname, "size": size, "error": _COLS[t],
                               "ΔAP50 float": _pts(c["a"]), "ΔAP50 quant": _pts(c["b"]), "change": _pts(c["delta"]),
                               "change CI": "" if c["lo"] is None else f"[{_pts(c['lo'])}, {_pts(c['hi'])}]",
                               "beyond noise": "yes" if c["lo"] is not None and (c["lo"] > 0 or c["hi"] < 0) else ""})
        confusions += _confusions(fname, qname, s["confusion"])
    return {"errors": pd.DataFrame(rows), "error_shift": pd.DataFrame(change), "error_headline": pd.DataFrame(lines),
            "confusion": pd.DataFrame(confusions)}


def _confusions(fname: str, qname: str, conf: Mapping, top: int = 12) -> list[dict]:
    """The off-diagonal cells (a box of one class taken for another, background taken for a class, a class
    missed) with the most detections in either model, both models' counts side by side."""
    cells: dict[tuple[int, int], list[int]] = {}
    for side, name in ((0, "float"), (1, "quant")):
        for r, p, n in conf[name]["cells"]:
            if r != p:
                cells.setdefault((r, p), [0, 0])[side] = n
    ranked = sorted(cells.items(), key=lambda kv: (-max(kv[1]), kv[0]))[:top]

    def label(c: int, none: str) -> str:
        return none if c < 0 else str(conf["float"]["labels"][c])

    return [{"float": fname, "quantized": qname, "ground truth": label(r, "background"),
             "detected as": label(p, "missed"), "float count": a, "quant count": b, "change": b - a}
            for (r, p), (a, b) in ranked]


def section(t: Mapping[str, pd.DataFrame], gallery_html: str) -> str:
    """The HTML of the error-type views."""
    return ('<p class="note">TIDE (Bolya et al., ECCV 2020) at IoU 0.5: each error type as the AP50 points gained '
            "if only that error were fixed (cls: right box, wrong class; loc: right class, IoU 0.1-0.5; both; dupe: "
            "a second detection of a detected box; bkg: IoU &le; 0.1 with every box; miss: a box nothing points "
            "at), and the false-positive / false-negative split. Per size, boxes of that size and false positives "
            "of that size count. The change is quantized - float with a paired bootstrap interval over the images."
            "</p>"
            + "".join(f"<p><b>{html.escape(r['quantized'])}</b>: {html.escape(r['what it broke'])}</p>"
                      for r in t["error_headline"].to_dict("records"))
            + "<h3>Change in each error type (AP50 points)</h3>"
            + render.html_table(t["error_shift"], {"beyond noise": "yes"})
            + "<h3>Each model's errors per object size (AP50 points)</h3>" + render.html_table(t["errors"])
            + '<h3>Class confusions</h3><p class="note">Detections scoring &ge; 0.3 at IoU 0.5: a box of one class '
            "detected as another, background detected as a class, a class missed; the cells with most detections "
            "in either model (class names by category id).</p>" + render.html_table(t["confusion"])
            + '<h3 id="error-gallery">Where the quantized model gained each error</h3><p class="note">Ground truth '
            "beside both models; boxes coloured by error type: tp green, cls orange, loc yellow, both purple, dupe "
            "blue, bkg red, missed boxes magenta.</p>" + gallery_html)


def gallery(records: Sequence[RunRecord], shift: Mapping, base_dir: Path | None, threshold: float,
            max_pairs: int = 2) -> str:
    from harness.analyse.report import gallery as pictures

    blocks = []
    pairs = {(model_name(f), model_name(q)): (f, q) for f, q in quant_pairs(latest_evals(records))}
    for key, s in list(shift.items())[:max_pairs]:
        if not isinstance(s, dict) or key not in pairs:
            continue
        items = pictures.error_gallery(*pairs[key], s["images"], base_dir, threshold)
        figs = "".join(f"<figure>{render.img(it.png, it.title)}<figcaption>{html.escape(kind)}: "
                       f"{html.escape(it.title)}</figcaption></figure>" for kind, it in items)
        blocks.append(f"<h4>{html.escape(key[0])} vs {html.escape(key[1])}</h4>"
                      + (f"<div class='gallery'>{figs}</div>" if figs else
                         "<p class='note'>no pictures: the records' files are not here</p>"))
    return "".join(blocks) or '<p class="note">no float / quantized pair</p>'
