"""The report's quantization trade-off: the Pareto front on hand-checked cases, and the section (tables,
Markdown, plots, the HTML page in Chromium) built from quant_search records.

The records are made up by the test with the numbers measured on mb3-centernet when the search was built
(float32 28.50 AP at 27 ms, full int8 0.36 at 63 ms, MUL kept in float 15.24, MUL and DEPTHWISE_CONV_2D
17.81, 16x8 27.79 at 1.5 s; file sizes of the mirror's .tflite files); the cost figures of the NPU search are invented.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from fake_records import eval_record, quant_search_record, search_candidate
from test_report import _screenshot

from harness.analyse.report.build import build_report
from harness.analyse.report.tradeoff import pareto_front
from harness.cli import main
from harness.errors import HarnessError
from harness.records.schema import validate

# --- the Pareto front: (cost, value), lower cost and higher value better ------------------------------


@pytest.mark.parametrize("points, front", [
    ([], []),
    ([(1.0, 1.0)], [0]),
    # those CPU numbers (p50 ms, ΔAP): float32 is fastest and loses nothing, so it dominates all
    ([(27, 0.0), (63, -28.14), (70, -13.26), (68, -10.69), (1500, -0.71)], [0]),
    # an NPU ranking: cheaper and worse, dearer and better; (11, -30) and (20, -5) are beaten
    ([(10, -28), (12, -11), (11, -30), (20, -0.7), (20, -5)], [0, 1, 3]),
    # cheapest first, whatever the input order
    ([(3, 3), (1, 1), (2, 2)], [1, 2, 0]),
    # identical points: neither beats the other, both stay
    ([(5, 1), (5, 1)], [0, 1]),
    # equal value at a higher cost, equal cost at a lower value: dominated
    ([(5, 1), (6, 1)], [0]),
    ([(5, 0), (5, 1)], [1]),
    # a point better in value only, then one better in both than the first
    ([(1, 0), (2, 5), (0.5, 0.5)], [2, 1]),
])
def test_pareto_front_by_hand(points, front):
    assert pareto_front(points) == front


# --- the section from records --------------------------------------------------------------------------

F32, INT8, S16X8 = 8_144_424, 2_552_784, 2_740_056


def _cpu_search() -> dict:
    c = [search_candidate("float32", 28.50, 28.50, 27.0, F32),
         search_candidate("int8", 0.36, 28.50, 63.0, INT8),
         search_candidate("int8+float MUL", 15.24, 28.50, 70.0, 2_700_000),
         search_candidate("int8+float MUL,DEPTHWISE_CONV_2D", 17.81, 28.50, 68.0, 3_000_000),
         search_candidate("int16x8", 27.79, 28.50, 1500.0, S16X8),
         search_candidate("int8 percentile", None, 28.50, None, None, status="failed",
                          reason="converter refused the ranges")]
    return quant_search_record(c, chosen="float32", created="2026-11-30T10:00:00+00:00")


def _npu_search() -> dict:
    c = [search_candidate("float32", 28.50, 28.50, 27.0, F32, status="skipped",
                          reason="the NPU runs no float ops"),
         search_candidate("int8", 0.36, 28.50, 63.0, INT8, cost=1.0),
         search_candidate("int8 mse", 0.30, 28.50, 64.0, INT8, cost=1.0),
         search_candidate("int8+float MUL", 15.24, 28.50, 70.0, 2_700_000, cost=1.4),
         search_candidate("int8+float MUL,DEPTHWISE_CONV_2D", 17.81, 28.50, 68.0, 3_000_000, cost=1.9),
         search_candidate("int16x8", 27.79, 28.50, 1500.0, S16X8, cost=2.0)]
    return quant_search_record(c, target="imx8mp-npu", chosen="int16x8", overlap=True,
                               created="2026-11-30T10:00:00+00:00")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("searches")
    old = _cpu_search()
    old["created"], old["chosen"] = "2026-11-01T00:00:00+00:00", "int8"  # an older run of the same search
    for name, rec in (("old", old), ("cpu", _cpu_search()), ("npu", _npu_search())):
        (d / f"search_{name}.json").write_text(json.dumps(rec))
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(d), "--out", str(out), "--gallery", "0", "--quiet"]) == 0
    return out


def _csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_candidate_is_a_row_with_its_front_and_role(report):
    rows = _csv(report / "tables" / "tradeoff.csv")
    cpu = {r["candidate"]: r for r in rows if r["search"] == "mb3-centernet/raw for cpu"}
    npu = {r["candidate"]: r for r in rows if r["search"] == "mb3-centernet/raw for imx8mp-npu"}
    assert len(cpu) == 6 and len(npu) == 7  # the newest cpu search only; the skipped float32 + its float block
    assert {k for k, r in cpu.items() if r["front (latency)"] == "yes"} == {"float32"}
    assert cpu["float32"]["role"] == "chosen, float32 reference" and cpu["int8"]["role"] == "int8 reference"
    assert cpu["int8 percentile"]["status"] == "failed" and cpu["int8 percentile"]["front (latency)"] == ""
    assert float(cpu["int8"]["ΔAP"]) == pytest.approx(0.36 - 28.50)
    assert float(cpu["int16x8"]["size MB"]) == pytest.approx(2.74)
    # NPU: float32 was skipped, so the record's float block is the reference point.
    assert npu["float32 (reference)"]["role"] == "float32 reference" and npu["float32 (reference)"]["ΔAP"] == "0.0"
    assert npu["float32"]["role"] == "" and npu["float32"]["status"] == "skipped"
    assert {k for k, r in npu.items() if r["front (cost)"] == "yes"} == {
        "int8", "int8+float MUL", "int8+float MUL,DEPTHWISE_CONV_2D", "int16x8"}
    assert npu["int16x8"]["role"] == "chosen, int16x8 reference"


def test_summary_says_the_outcome_and_the_overlap(report):
    rows = {r["search"]: r for r in _csv(report / "tables" / "tradeoff_summary.csv")}
    assert rows["mb3-centernet/raw for cpu"]["outcome"] == "chosen float32"
    assert rows["mb3-centernet/raw for cpu"]["overlap"] == "no"
    assert rows["mb3-centernet/raw for cpu"]["validate"] == "159 images of val2017"
    assert rows["mb3-centernet/raw for cpu"]["calibration"] == "3 images of val2017_unlabeled"
    npu = rows["mb3-centernet/raw for imx8mp-npu"]
    assert npu["overlap"].startswith("YES") and npu["outcome"] == "chosen int16x8"
    assert float(npu["ΔAP"]) == pytest.approx(-0.71) and npu["candidates"] == "5 measured, 1 skipped, 0 failed"


def test_no_plan_within_budget_names_the_closest(tmp_path):
    c = [search_candidate("int8", 0.36, 28.50, 63.0, INT8),
         search_candidate("int8+float MUL,DEPTHWISE_CONV_2D", 17.81, 28.50, 68.0, 3_000_000)]
    rep = build_report([quant_search_record(c, closest="int8+float MUL,DEPTHWISE_CONV_2D")], tmp_path,
                       gallery_images=0)
    (row,) = rep.tables["tradeoff_summary"].to_dict("records")
    assert row["outcome"] == "none within budget; closest int8+float MUL,DEPTHWISE_CONV_2D"
    assert row["ΔAP"] == pytest.approx(17.81 - 28.50)
    assert "closest" in rep.markdown_text


def test_markdown_has_the_section_and_no_html(report):
    md = (report / "report.md").read_text()
    assert "### Quantization search: the trade-off" in md
    assert "Candidates of mb3-centernet/raw for imx8mp-npu:" in md
    # an NPU search's record without cost_source is from before Vela: its figures were modelled, and say so
    assert "| int16x8 | measured | 27.79 | -0.71 | 1500.00 | 2.74 | 2.00 | modelled | yes |" in md
    assert "<" not in md


def test_one_plot_per_search(report):
    from PIL import Image

    names = {p.name for p in (report / "plots").glob("tradeoff_*.png")}
    assert names == {"tradeoff_mb3-centernet_raw_for_cpu.png", "tradeoff_mb3-centernet_raw_for_imx8mp-npu.png"}
    with Image.open(report / "plots" / "tradeoff_mb3-centernet_raw_for_cpu.png") as cpu, \
            Image.open(report / "plots" / "tradeoff_mb3-centernet_raw_for_imx8mp-npu.png") as npu:
        assert npu.width > 1.6 * cpu.width  # the NPU search adds the cost panel
        assert cpu.height > 300


def test_reports_without_searches_have_no_section(tmp_path):
    rep = build_report([eval_record("mb3-centernet-f32", 0.285)], tmp_path, gallery_images=0)
    assert "Quantization search" not in rep.markdown_text
    assert "Quantization search" not in rep.html.read_text()
    assert not list((tmp_path / "plots").glob("tradeoff_*"))


def test_a_search_is_named_by_its_model_else_by_where_its_plans_start():
    from harness.records.selection import search_subject

    assert search_subject(_cpu_search()) == "mb3-centernet/raw"
    assert search_subject(quant_search_record([], model={"name": "mb3-centernet-raw"})) == "mb3-centernet-raw"
    assert search_subject(quant_search_record([])) == "?"


def test_a_search_record_without_candidates_is_refused():
    rec = quant_search_record([])
    del rec["candidates"]
    with pytest.raises(HarnessError, match="quant_search record lacks candidates"):
        validate(rec, "x.json")


def test_html_section_renders_in_chromium(report, tmp_path):
    """The section's tables and plots as a browser draws them: the chosen plan's ring and the budget line
    are the only things on the page drawn in #c0392b, so they show that the plots were rendered."""
    page = (report / "report.html").read_text()
    assert "Quantization search: accuracy against speed, and the Pareto front" in page
    section = page[page.index("Quantization search: accuracy against speed"):]
    assert section.count("data:image/png;base64,") == 2
    px = _screenshot(report / "report.html", tmp_path, height=9000).astype(int)
    ring = (np.abs(px - np.array([192, 57, 43])).sum(axis=2) < 40).sum()
    assert ring > 200, ring
