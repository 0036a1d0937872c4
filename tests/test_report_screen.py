"""The report as a reader first sees it ("one surface"): Chromium at 1400 x 900 px, the records of
the mirror's four mb3-centernet artifacts (hub SavedModel, raw_f32, raw_int8, raw_16x8 .tflite) and a bench,
copied to another folder before the report is made.

Measured in the browser itself: the test adds a small script to a copy of the page that records, after
layout, where the headline lies and how wide every table is against the viewport, and Chromium's
--dump-dom hands back the DOM with that record in it (no driver, no extra package: the report page itself
carries no script). Plus the plots' axes and the per-class chart's choice, checked by hand.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest
from test_report import _browser

from harness.analyse.report.plots import ap_limits, latency_limits, per_class_selection
from harness.cli import main
from harness.common.fileio import write_json_atomic

ARTIFACTS = ("mb3-centernet-hub", "mb3-centernet-f32", "mb3-centernet-int8", "mb3-centernet-16x8")
IMAGES = 8
WIDTH, HEIGHT = 1400, 900

# Runs after layout: the headline's box, then (every detail section opened) each table's width and the box
# that holds it; written into the DOM as JSON for --dump-dom to carry out.
MEASURE = """<script>
window.addEventListener('load', () => {
  const rect = e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, left: r.left,
                                                                   right: r.right, width: r.width}; };
  const headline = document.getElementById('headline');
  const out = {innerWidth, innerHeight, viewport: document.documentElement.clientWidth,
               headline: headline ? rect(headline) : null,
               folded: document.querySelectorAll('details:not([open])').length, tables: []};
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  document.querySelectorAll('table').forEach(t => {
    const box = t.parentElement;
    const scrolls = ['auto', 'scroll'].includes(getComputedStyle(box).overflowX);
    out.tables.push({head: [...t.querySelectorAll('th')].slice(0, 3).map(th => th.textContent).join(' | '),
                     inHeadline: !!t.closest('#headline'), table: rect(t), box: rect(box), scrolls,
                     scrollWidth: t.scrollWidth, boxWidth: box.clientWidth});
  });
  out.pageWidth = document.documentElement.scrollWidth;
  const pre = document.createElement('pre');
  pre.id = 'measurements';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium installed (.ci/run installs Debian's chromium)")
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={WIDTH},{HEIGHT}", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(tmp_path)})


def measure(page, tmp_path) -> dict:
    """What the browser laid out for `page` at 1400 x 900: see MEASURE."""
    probe = page.with_name("measured.html")
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = _chromium(["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()], tmp_path).stdout
    found = re.search(r'<pre id="measurements">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))


@pytest.fixture(scope="module")
def four(mirror, tmp_path_factory):
    """Records of the four artifacts on the first 8 images (one worker each) and a short bench of raw_f32,
    written in one folder, then copied to another and the first folder deleted: the records' absolute
    paths to their detections are gone, the copies sit beside them."""
    from harness.measure.benchmark import bench_settings, benchmark
    from harness.measure.evaluate import evaluate, ground_truth
    from harness.measure.profiler import StopRule
    from harness.models.backends import BackendOptions
    from harness.models.mirror import Mirror
    from harness.models.zoo import get_card

    m = Mirror(mirror)
    first = tmp_path_factory.mktemp("first")
    gt = ground_truth(None, m)
    for name in ARTIFACTS:
        rec = evaluate(name, get_card(name), m, gt, BackendOptions(), max_images=IMAGES, output=first / "det",
                       progress=False, workers=1)
        write_json_atomic(first / f"eval_{name}.json", rec)
    rec = benchmark("mb3-centernet-f32", get_card("mb3-centernet-f32"), m, BackendOptions(threads=1),
                    m.unlabeled_images, bench_settings(1, StopRule(6, 0.0, 10.0), StopRule(4, 0.0, 10.0)))
    write_json_atomic(first / "bench_mb3-centernet-f32.json", rec)
    copied = tmp_path_factory.mktemp("copied") / "records"
    shutil.copytree(first, copied)
    shutil.rmtree(first)
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(copied), "--out", str(out), "--gallery", "1", "--ci-resamples", "200",
                 "--quiet"]) == 0
    records = {p.stem: json.loads(p.read_text()) for p in copied.glob("*.json")}
    return out, records


@pytest.mark.slow
def test_at_1400_px_no_table_overflows_and_the_headline_is_on_the_first_screen(four, tmp_path):
    out, _ = four
    m = measure(out / "report.html", tmp_path)
    assert m["innerWidth"] == WIDTH, m["innerWidth"]  # the window size took
    first_screen = min(HEIGHT, m["innerHeight"])
    assert m["headline"] is not None and 0 <= m["headline"]["top"] < m["headline"]["bottom"] <= first_screen, \
        (m["headline"], m["innerHeight"])
    assert m["folded"] >= 5  # every detail section starts folded
    assert m["pageWidth"] <= m["viewport"], "the page scrolls sideways"
    headline = [t for t in m["tables"] if t["inHeadline"]]
    assert len(headline) == 3
    for t in m["tables"]:
        assert t["table"]["width"] > 0, t["head"]  # opened and laid out
        if t["inHeadline"]:  # fits as it is: nothing scrolled out of sight
            assert t["scrollWidth"] <= t["boxWidth"] and t["table"]["right"] <= m["viewport"], t
        elif t["scrolls"]:  # may scroll inside its own box, but the box fits the page
            assert t["box"]["left"] >= 0 and t["box"]["right"] <= m["viewport"], t
        else:
            assert t["table"]["right"] <= m["viewport"], t


def _headline_tables(out) -> dict[str, list[dict]]:
    def rows(name):
        return pd.read_csv(out / "tables" / f"{name}.csv", keep_default_na=False).to_dict("records")
    return {k: rows(f"headline_{k}") for k in ("accuracy", "quant", "latency")}


@pytest.mark.slow
def test_the_headline_answers_the_three_questions_from_the_records(four):
    out, records = four
    t = _headline_tables(out)
    acc = {r["model"]: r for r in t["accuracy"]}
    assert set(acc) == set(ARTIFACTS)
    for name in ARTIFACTS:
        rec, row = records[f"eval_{name}"], acc[name]
        assert row["AP"] == pytest.approx(100 * rec["results"]["stats"]["AP"], abs=0.006)
        assert re.fullmatch(r"95% \[-?\d+\.\d\d, -?\d+\.\d\d\]", row["AP interval"]), row
        assert row["published AP"] == 25.1  # MODEL_CARD.md: "Its authors report 25.1 mAP on the full val2017"
        assert row["like for like"] == f"no: image count differs: {IMAGES} here, 5000 published"
        assert row["within sampling error"] in ("consistent", "inconsistent")
    # the TFLite siblings against the TFLite float, each with its paired interval (found beside the copies)
    quant = {r["quantized"]: r for r in t["quant"]}
    assert set(quant) == {"mb3-centernet-int8", "mb3-centernet-16x8"}
    for q, row in quant.items():
        fa, qa = (100 * records[f"eval_{m}"]["results"]["stats"]["AP"] for m in ("mb3-centernet-f32", q))
        assert row["float"] == "mb3-centernet-f32" and row["ΔAP"] == pytest.approx(qa - fa, abs=0.011)
        lo, hi = map(float, re.fullmatch(r"95% \[(-?[\d.]+), (-?[\d.]+)\]", row["paired interval"]).groups())
        assert row["verdict"] == ("lost AP (whole interval below 0)" if hi < 0 else "gained AP (whole interval "
                                  "above 0)" if lo > 0 else "no change shown (interval spans 0)")
    (lat,) = t["latency"]
    bench = records["bench_mb3-centernet-f32"]
    host = next(c for c in lat if c.endswith(f"({bench['host']['fingerprint'][:6]})"))
    p50 = [bench["phases"][p]["stats"]["p50_s"] * 1e3 for p in ("model_only", "end_to_end")]
    assert lat["model"] == "mb3-centernet-f32" and lat[host] == f"{p50[0]:.1f} / {p50[1]:.1f}"


@pytest.mark.slow
def test_the_gallery_finds_the_copied_detections(four):
    page = (four[0] / "report.html").read_text()
    gallery = page[page.index('<h3 id="gallery">'):page.index("<h3>ΔAP per class</h3>")]
    assert "no pictures" not in gallery and gallery.count("<figure>") == 2  # the two pairs, one image each


@pytest.mark.slow
def test_first_screen_screenshot(four, tmp_path):
    """The picture a reader gets (kept beside the report for a look): mostly the headline's tables."""
    out, _ = four
    shot = out / "first_screen.png"
    _chromium(["--hide-scrollbars", f"--screenshot={shot}", (out / "report.html").as_uri()], tmp_path)
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (WIDTH, HEIGHT)


# --- plots that read at a glance, by hand ---------------------------------------------------------------


def _classes(deltas: dict[str, float], few: set[str] = frozenset()) -> pd.DataFrame:
    return pd.DataFrame([{"float": "f", "quantized": "q", "class": c, "ΔAP": d,
                          "few boxes": "3 < 10" if c in few else ""} for c, d in deltas.items()])


def test_per_class_chart_shows_the_worst_and_the_best_not_all_80():
    deltas = {f"c{i:02d}": float(i - 40) for i in range(80)}  # c00 loses 40 points ... c79 gains 39
    shown = per_class_selection(_classes(deltas), "q", worst=12, best=8)["class"].tolist()
    assert shown == [f"c{i:02d}" for i in range(12)] + [f"c{i:02d}" for i in range(72, 80)]


def test_per_class_chart_fills_up_with_rare_classes_only_after_the_ranked_ones():
    deltas = {"a": -5.0, "b": 2.0, "r1": -50.0, "r2": -1.0, "r3": -9.0}
    shown = per_class_selection(_classes(deltas, few={"r1", "r2", "r3"}), "q", worst=2, best=2)["class"].tolist()
    assert shown == ["a", "b", "r1", "r3"]


def test_ap_axis_starts_at_zero_with_headroom_for_a_single_point():
    assert ap_limits([36.0]) == (0.0, pytest.approx(41.0))  # 36 + 5 points: never a 0.03-wide span
    assert ap_limits([0.36, 28.5]) == (0.0, pytest.approx(33.5))
    assert ap_limits([95.0]) == (0.0, 100.0)


def test_latency_axis_is_padded_by_a_factor_of_two_each_side():
    assert latency_limits([27.0]) == (13.5, 54.0)
    assert latency_limits([27.0, 1500.0]) == (13.5, 3000.0)
