"""`harness report`: every table and plot over records from three hosts, the HTML page in a real browser."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from fake_records import on_board

from harness.cli import main
from harness.common.fileio import write_json_atomic

QUICK = ["--min-count", "6", "--min-duration", "0", "--e2e-min-count", "4", "--e2e-min-duration", "0",
         "--warmup", "1", "--threads", "1"]


def _quant_compare_record(rec: dict) -> dict:
    """A `harness compare FLOAT QUANT` record in the shape the report reads (values made up by the test)."""
    out = {k: rec[k] for k in ("schema", "schema_version", "created", "harness", "command", "host", "versions")}
    layers = [{"name": f"layer_{i}", "op": "CONV_2D", "index": i, "share": s, "snr_db": 30 - 5 * i,
               "cosine": 1 - 0.01 * i} for i, s in enumerate((0.05, 0.10, 0.60, 0.25))]
    out.update(kind="quant_compare", float_model={"name": "mb3-centernet-f32"},
               quant_model={"name": "mb3-centernet-int8", "mode": "int8"},
               heads={"heatmap": {"cosine": 0.43, "mse": 0.01, "snr_db": 1.2, "max_abs_err": 0.9},
                      "wh": {"cosine": 0.9, "mse": 4.0, "snr_db": 9.0, "max_abs_err": 30.0}},
               layers=layers, ranking=["layer_2", "layer_3", "layer_1", "layer_0"], first_bad_layer="layer_2")
    return out


@pytest.fixture(scope="module")
def records_dir(mirror, tmp_path_factory):
    """Real runs on this machine (eval and bench of mb3 f32 and int8) plus the same benches as two boards."""
    d = tmp_path_factory.mktemp("records")
    for model in ("mb3-centernet-f32", "mb3-centernet-int8"):
        assert main(["eval", model, "--mirror", str(mirror), "--max-images", "12", "--quiet",
                     "--out", str(d / "detections"), "--json", str(d / f"eval_{model}.json")]) == 0
        assert main(["bench", model, "--mirror", str(mirror), *QUICK, "--json", str(d / f"bench_{model}.json")]) == 0
        local = json.loads((d / f"bench_{model}.json").read_text())
        for i, (board, speed) in enumerate((("imx8mp", 4.0), ("imx93", 7.0))):
            write_json_atomic(d / f"bench_{model}_{board}.json", on_board(local, board, speed, seed=i))
    write_json_atomic(d / "compare.json", _quant_compare_record(local))
    return d


@pytest.fixture(scope="module")
def report(records_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(records_dir), "--out", str(out), "--gallery", "2", "--quiet"]) == 0
    return out


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_table_is_written_as_csv_and_json(report):
    tables = json.loads((report / "report.json").read_text())["tables"]
    for name in ("accuracy", "baselines", "quant_overall", "quant_per_class", "quant_error_heads",
                 "quant_error_summary", "quant_error_layers", "latency", "ap_vs_latency", "hosts"):
        rows = _csv(report / "tables" / f"{name}.csv")
        assert rows, name
        assert len(rows) == len(tables[name]), name


def test_latency_table_has_one_row_per_model_and_host(report):
    rows = _csv(report / "tables" / "latency.csv")
    assert len({r["host"] for r in rows}) == 3
    assert len(rows) == 6
    for r in rows:
        assert float(r["invoke p50 ms"]) <= float(r["invoke p90 ms"]) <= float(r["invoke p99 ms"])
    assert len(_csv(report / "tables" / "hosts.csv")) == 3


def test_accuracy_rows_flag_the_mirror_subset_as_not_like_for_like(report):
    rows = {r["model"]: r for r in _csv(report / "tables" / "accuracy.csv")}
    assert set(rows) == {"mb3-centernet-f32", "mb3-centernet-int8"}
    for r in rows.values():
        assert r["images"] == "12" and r["published AP"] == "25.1" and r["like for like"] == "NO"
        assert "image count differs: 12 here, 5000 published" in r["why not"]


def test_seed_baselines_appear_with_provenance_without_a_run(report):
    rows = {r["model"]: r for r in _csv(report / "tables" / "baselines.csv")}
    assert rows["centernet-resnet50v2-512"]["published AP"] == "29.5"
    assert rows["centernet-resnet50v2-512"]["split"] == "test-dev2017"
    assert rows["centernet-mobilenetv2-fpn-512-f32"]["published AP"] == "23.4"
    assert rows["centernet-mobilenetv2-fpn-512-int8"]["published AP"] == "17.2"
    assert "eiq-model-zoo" in rows["centernet-mobilenetv2-fpn-512-int8"]["source"]
    for seed in ("centernet-resnet50v2-512", "centernet-mobilenetv2-fpn-512-f32", "centernet-mobilenetv2-fpn-512-int8"):
        assert rows[seed]["measured here"] == "no run yet"
    assert rows["mb3-centernet-int8"]["measured here"] == "yes"


def test_float_vs_int8_overall_and_per_class(report, records_dir):
    (row,) = _csv(report / "tables" / "quant_overall.csv")
    f = json.loads((records_dir / "eval_mb3-centernet-f32.json").read_text())["results"]
    q = json.loads((records_dir / "eval_mb3-centernet-int8.json").read_text())["results"]
    assert float(row["ΔAP"]) == pytest.approx(round(100 * (q["stats"]["AP"] - f["stats"]["AP"]), 2), abs=0.011)
    assert {"ΔAPs", "ΔAPm", "ΔAPl"} <= set(row)
    per_class = _csv(report / "tables" / "quant_per_class.csv")
    assert {r["class"] for r in per_class} == set(f["per_class"]) & set(q["per_class"])
    # Largest drops first among classes with enough ground truth; rarer classes after them, also sorted.
    few = [r["few boxes"] != "" for r in per_class]
    assert few == sorted(few)
    for group in (False, True):
        deltas = [float(r["ΔAP"]) for r, f in zip(per_class, few, strict=True) if r["ΔAP"] and f == group]
        assert deltas == sorted(deltas)
    assert all(r["boxes"] != "" for r in per_class)


def test_quantization_error_names_where_it_starts(report):
    (row,) = _csv(report / "tables" / "quant_error_summary.csv")
    assert row["error starts at"] == "layer_2 (#2, CONV_2D)" and row["op types adding most error"] == ""
    layers = _csv(report / "tables" / "quant_error_layers.csv")
    assert [r["layer"] for r in layers] == ["layer_2", "layer_3", "layer_1", "layer_0"]  # by share
    assert [r["first bad"] for r in layers] == ["yes", "", "", ""]


def test_plots_are_written(report):
    names = {p.name for p in (report / "plots").glob("*.png")}
    assert names == {"ap_vs_latency.png", "latency_distribution.png", "delta_ap_per_class_mb3-centernet-int8.png"}
    from PIL import Image

    for p in (report / "plots").glob("*.png"):
        with Image.open(p) as im:
            assert im.width > 300 and im.height > 200


def test_ap_vs_latency_has_one_point_per_model_and_host(report):
    rows = _csv(report / "tables" / "ap_vs_latency.csv")
    assert len(rows) == 6 and len({(r["model"], r["host"]) for r in rows}) == 6


def test_markdown_fits_a_ci_step_summary(report):
    md = (report / "report.md").read_text()
    assert md.count("| mb3-centernet-int8 |") >= 3  # accuracy, float vs quantized, latency
    assert "Not like for like: image count differs" in md
    assert "<" not in md  # no HTML: GitHub renders it as plain Markdown


def test_html_is_self_contained(report):
    page = (report / "report.html").read_text()
    assert not re.search(r'<(img|script|link)[^>]+(src|href)="(http|//|file:)', page)
    assert page.count("data:image/png;base64,") >= 3
    for heading in ("Accuracy vs published baselines", "Float vs quantized", "Gallery", "Latency per model",
                    "Output error per head", "Where the error starts and grows", "Layers that add the error",
                    "ΔAP per class"):
        assert heading in page


def test_dashboard_files_follow_github_action_benchmark(report):
    smaller = json.loads((report / "benchmark-smaller-is-better.json").read_text())
    bigger = json.loads((report / "benchmark-bigger-is-better.json").read_text())
    assert len(smaller) == 12 and len(bigger) == 4  # 6 model x host, 2 phases; 2 models, AP and AP50
    for item in smaller + bigger:
        assert set(item) >= {"name", "unit", "value"} and isinstance(item["value"], float)
    assert len({i["name"] for i in smaller}) == len(smaller)


def test_report_from_a_store_equals_the_report_from_files(records_dir, report, tmp_path):
    store = tmp_path / "runs.sqlite"
    assert main(["store", "import", str(store), str(records_dir)]) == 0
    out = tmp_path / "from_store"
    assert main(["report", "--store", str(store), "--out", str(out), "--gallery", "0", "--quiet"]) == 0
    for name in ("accuracy", "latency", "quant_per_class"):
        assert (out / "tables" / f"{name}.csv").read_text() == (report / "tables" / f"{name}.csv").read_text()


def test_report_without_records_is_bad_input(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no run records" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _browser() -> str | None:
    return next(filter(None, (shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome"))), None)


def unfolded(page):
    """A copy of the page with every detail section open, as a reader who opened them all sees it (the page
    folds them; a folded section is not drawn). Self-contained, so the copy renders anywhere."""
    copy = page.with_name(f"{page.stem}_unfolded.html")
    copy.write_text(page.read_text().replace("<details>", "<details open>"))
    return copy


def _screenshot(page, tmp_path, height: int = 3600) -> np.ndarray:
    """Chromium's picture of the page at 1400 px wide, every detail section opened (see `unfolded`)."""
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium)")
    page = unfolded(page)
    shot = tmp_path / f"{page.parent.name}.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", f"--window-size=1400,{height}",
           f"--screenshot={shot}", page.as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    from PIL import Image

    with Image.open(shot) as im:
        return np.asarray(im.convert("RGB"))


def _colours(px: np.ndarray) -> int:
    return len(np.unique(px.reshape(-1, 3), axis=0))


def test_html_renders_in_headless_chromium(report, tmp_path):
    px = _screenshot(report / "report.html", tmp_path)
    assert px.shape[:2] == (3600, 1400)
    not_white = (px < 240).any(axis=2).mean()
    assert not_white > 0.05, f"screenshot is nearly blank ({not_white:.1%} non-white)"
    assert _colours(px) > 50  # tables, plots and pictures, not a flat page


def test_the_browser_shows_the_float_vs_int8_gallery(report, records_dir, tmp_path):
    """Photographs carry thousands of colours, tables and plots a few hundred: the same report without its
    gallery renders far fewer colours in the same window, so the pictures are what the browser drew."""
    page = (report / "report.html").read_text()
    gallery = page[page.index('<h3 id="gallery">'):page.index("<h3>ΔAP per class</h3>")]
    assert "mb3-centernet-f32 vs mb3-centernet-int8" in gallery and gallery.count("<figure>") == 2
    bare = tmp_path / "bare"
    assert main(["report", str(records_dir), "--out", str(bare), "--gallery", "0", "--quiet"]) == 0
    with_gallery, without = _colours(_screenshot(report / "report.html", tmp_path)), \
        _colours(_screenshot(bare / "report.html", tmp_path))
    assert with_gallery > 5000 and with_gallery > 5 * without, (with_gallery, without)


def test_baselines_come_from_the_records_not_from_todays_cards():
    """A record is self-contained: an old run is shown beside the baseline it was measured against."""
    from harness.analyse.report import tables
    from harness.models.zoo import get_card
    from harness.records.schema import new_record

    card = get_card("mb3-centernet-f32").to_dict()
    card["baseline"] = {**card["baseline"], "ap": 99.9, "note": "an older card"}
    rec = new_record("eval", model=card, dataset={"image_count": 1, "split": "val2017"},
                     results={"stats": {"AP": 0.1}, "per_class": {}}, backend={"runtime": "x"}, comparison={})
    rows = {r["model"]: r for r in tables.baselines([rec]).to_dict("records")}
    assert rows["mb3-centernet-f32"]["published AP"] == 99.9 and rows["mb3-centernet-f32"]["from"] == "run record"
    assert rows["mb3-centernet-int8"]["published AP"] == 25.1 and rows["mb3-centernet-int8"]["from"] == "zoo card"


def test_the_error_types_of_the_pair_join_where_the_error_starts(report, tmp_path):
    """Each eval's TIDE decomposition, the pair's change per error type with a paired interval,
    the sentence that joins it to the op where the error starts (the compare record's layer_2, op 2), both
    models' confusions and one picture per error type the int8 model gained, drawn by the browser."""
    errors = _csv(report / "tables" / "errors.csv")
    assert {r["model"] for r in errors} == {"mb3-centernet-f32", "mb3-centernet-int8"}
    assert {r["size"] for r in errors} >= {"all", "small", "medium", "large"}
    shift = _csv(report / "tables" / "error_shift.csv")
    loc = next(r for r in shift if r["size"] == "all" and r["error"].startswith("loc"))
    lo, hi = (float(v) for v in loc["change CI"].strip("[]").split(","))
    assert lo <= float(loc["change"]) <= hi
    line = _csv(report / "tables" / "error_headline.csv")[0]["what it broke"]
    assert line.startswith("mb3-centernet-int8 adds") and "its error starts at op 2 CONV_2D (layer_2)" in line
    assert _csv(report / "tables" / "confusion.csv")
    page = (report / "report.html").read_text()
    section = page[page.index('<h3 id="error-gallery">'):]
    assert section.count("<figure>") >= 3 and "gained" in section
    assert line in page.replace("&#x27;", "'")
    px = _screenshot(report / "report.html", tmp_path)
    assert _colours(px) > 5000
