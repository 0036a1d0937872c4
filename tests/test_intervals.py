"""How sure is a number, end to end: intervals in eval and merge records and on the console, the baseline
verdict, the paired quantization gate (pass / fail / inconclusive and its exit codes), and the report's
interval columns and greyed-out low-count classes.

Eval runs are real (mb3-centernet-f32 on the mirror's first 12 images). The quantization pairs are records
of detections made from the mirror's ground truth (tests/test_bootstrap.py's noisy detector) with a
controlled localisation shift for the "quantized" sibling, so the drop and its interval are known.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from fake_records import eval_record, scored_eval_record
from test_bootstrap import noisy_results

from harness.cli import main
from harness.models.zoo import get_card
from harness.records.schema import SCHEMA_VERSION, read_record_file
from harness.scoring.baseline import compare
from harness.scoring.coco import CocoGroundTruth

HEADLINE = re.compile(r"^AP (\d+\.\d\d) \[(\d+\.\d\d), (\d+\.\d\d)\] \(95%, bootstrap over 12 images\)$", re.M)


def _eval(mirror: Path, out: Path, capsys, *extra: str) -> tuple[dict, str]:
    out.mkdir(parents=True, exist_ok=True)
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", "12", "--quiet",
                 "--out", str(out), "--json", str(out / "eval.json"), *extra]) == 0
    (rec,) = read_record_file(out / "eval.json")
    return rec, capsys.readouterr().out


def test_eval_record_and_console_carry_the_interval(mirror, tmp_path, capsys):
    rec, out = _eval(mirror, tmp_path / "a", capsys)
    assert rec["schema_version"] == SCHEMA_VERSION
    iv = rec["results"]["interval"]
    assert {k: iv[k] for k in ("level", "method", "resamples", "seed", "images")} == {
        "level": 0.95, "method": "basic-widened", "resamples": 1000, "seed": 0, "images": 12}
    for k in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        s = iv[k]
        assert s["point"] is None or 0.0 <= s["lo"] <= s["point"] <= s["hi"] <= 1.0, k
    assert iv["AP"]["point"] == pytest.approx(rec["results"]["stats"]["AP"], abs=1e-6)
    assert iv["seconds"] > 0 and iv["per_class"]["person"]["lo"] <= iv["per_class"]["person"]["hi"]
    # Per class: the ground truth behind each AP.
    person = rec["results"]["per_class"]["person"]
    assert person["instances"] > 0 and 0 < person["images"] <= 12
    # The console line and the table column.
    m = HEADLINE.search(out)
    assert m, out
    assert [float(x) for x in m.groups()] == pytest.approx(
        [100 * iv["AP"]["point"], 100 * iv["AP"]["lo"], 100 * iv["AP"]["hi"]], abs=0.006)
    assert "95% interval" in out
    # The baseline comparison says whether 25.1 is within sampling error of a 12-image run.
    v = rec["comparison"]["interval_verdict"]
    assert v["verdict"] in ("consistent", "inconsistent") and v["published_images"] == 5000
    assert v["text"].startswith(f"{100 * rec['results']['stats']['AP']:.2f} [")
    assert "on 12 images vs 25.1 published on 5000" in v["text"]
    assert f"within sampling error (95%): {v['text']}" in out
    assert main(["report", str(tmp_path / "a"), "--out", str(tmp_path / "r"), "--gallery", "0", "--quiet"]) == 0
    (row,) = _csv(tmp_path / "r" / "tables" / "accuracy.csv")
    assert row["AP CI"] == f"[{100 * iv['AP']['lo']:.2f}, {100 * iv['AP']['hi']:.2f}]"
    assert row["within sampling error"] == v["text"]


def test_eval_without_interval_and_bad_options(mirror, tmp_path, capsys):
    rec, out = _eval(mirror, tmp_path / "b", capsys, "--ci-resamples", "0")
    assert "interval" not in rec["results"] and "interval_verdict" not in rec["comparison"]
    assert not HEADLINE.search(out) and "95% interval" not in out
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--confidence", "95"]) == 2
    assert "--confidence is a confidence level" in capsys.readouterr().err
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--ci-resamples", "1"]) == 2


def test_merged_shards_get_the_interval(mirror, tmp_path, capsys):
    paths = []
    for i in (1, 2):
        out = tmp_path / f"s{i}"
        assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", "12", "--quiet",
                     "--shard", f"{i}/2", "--ci-resamples", "0", "--out", str(out),
                     "--json", str(out / "eval.json")]) == 0
        paths.append(str(out / "eval.json"))
    assert main(["eval", "--merge", *paths, "--quiet", "--out", str(tmp_path / "m"), "--json",
                 str(tmp_path / "m" / "eval.json")]) == 0
    (rec,) = read_record_file(tmp_path / "m" / "eval.json")
    assert rec["results"]["interval"]["images"] == 12 and "interval_verdict" in rec["comparison"]
    assert HEADLINE.search(capsys.readouterr().out)


def test_a_results_file_gets_the_interval_an_eval_gets(mirror, tmp_path, capsys):
    """`harness eval --results`: the same bootstrap (and so the same numbers) as on the detections in memory."""
    from harness.scoring.intervals import results_interval

    gt = CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json")
    results = noisy_results(gt, seed=1)
    (tmp_path / "det.json").write_text(json.dumps(results))
    args = ["eval", "--results", str(tmp_path / "det.json"), "--gt", str(gt.path)]
    assert main([*args, "--ci-resamples", "300", "--json", str(tmp_path / "score.json")]) == 0
    (rec,) = read_record_file(tmp_path / "score.json")
    iv = rec["results"]["interval"]
    expected = results_interval(gt, results, [i.id for i in gt.images], 300)
    assert expected is not None and iv["resamples"] == 300 and iv["images"] == len(gt.images)
    for k in ("AP", "AP50", "ARl"):
        assert (iv[k]["lo"], iv[k]["hi"]) == (expected[k]["lo"], expected[k]["hi"]), k
    assert "95% interval" in capsys.readouterr().out
    assert main([*args, "--ci-resamples", "0", "--json", str(tmp_path / "none.json")]) == 0
    (rec,) = read_record_file(tmp_path / "none.json")
    assert "interval" not in rec["results"]


def test_baseline_verdict_in_the_comparison_block():
    card = get_card("mb3-centernet-f32")  # published 25.1 on 5000 val2017 images
    interval = {"AP": {"point": 0.285, "lo": 0.233, "hi": 0.300, "se": 0.017}, "level": 0.95, "method": "basic-widened",
                "resamples": 1000, "seed": 0, "images": 159}
    ds = {"split": "val2017", "image_count": 159}
    v = compare(card, "native", ds, 0.285, interval)["interval_verdict"]
    assert v["verdict"] == "consistent" and v["lo"] < 23.3 and v["hi"] > 30.0  # widened by the published se
    assert v["text"].startswith("28.50 [") and "on 159 images vs 25.1 published on 5000" in v["text"]
    narrow = {**interval, "AP": {"point": 0.285, "lo": 0.275, "hi": 0.295, "se": 0.005}}
    assert compare(card, "native", ds, 0.285, narrow)["interval_verdict"]["verdict"] == "inconsistent"
    other = compare(card, "nxp", ds, 0.285, narrow)["interval_verdict"]["text"]
    assert "sampling error only; protocol differs" in other
    assert "interval_verdict" not in compare(card, "native", ds, 0.285)


# --------------------------------------------------------------------------------------------------
# Float and "quantized" siblings with detection files: the paired gate and the report


@pytest.fixture(scope="module")
def pair_dir(mirror, tmp_path_factory):
    """f32 and int8 records of noisy detections on the mirror's 159 images; the int8 boxes are shifted by
    5% of their size: a drop of 2.26 AP points, 95% paired interval about [1.2, 2.9]."""
    d = tmp_path_factory.mktemp("pair")
    gt = CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json")
    recs = {"f32": scored_eval_record("mb3-centernet-f32", gt, noisy_results(gt, seed=7), d / "det_f32.json",
                                      created="2026-01-01T00:00:00+00:00"),
            "int8": scored_eval_record("mb3-centernet-int8", gt, noisy_results(gt, seed=7, shift=0.05),
                                       d / "det_int8.json", created="2026-01-01T00:00:01+00:00")}
    for name, rec in recs.items():
        (d / f"eval_{name}.json").write_text(json.dumps(rec))
    return d


def _check(capsys, *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    return code, capsys.readouterr().out


def test_quant_gate_with_confidence_fails_passes_and_is_inconclusive(pair_dir, capsys):
    files = [str(pair_dir / "eval_f32.json"), str(pair_dir / "eval_int8.json")]
    code, out = _check(capsys, *files, "--max-quant-drop", "0.5", "--confidence", "0.95")
    assert code == 1 and "FAIL [quant-drop]" in out and "exceeds 0.5 with 95% confidence" in out
    assert re.search(r"drop 2\.2\d \[1\.\d\d, 2\.\d\d\] \(95% paired bootstrap over 159 images", out), out
    code, out = _check(capsys, *files, "--max-quant-drop", "4", "--confidence", "0.95")
    assert code == 0 and "PASS [quant-drop]" in out and "below 4 with 95% confidence" in out
    code, out = _check(capsys, *files, "--max-quant-drop", "2.5", "--confidence", "0.95")
    assert code == 0 and "WARN [quant-drop]" in out and "inconclusive" in out
    need = int(re.search(r"about (\d+) images would likely decide it", out).group(1))
    assert need > 159
    assert "1 passed (1 inconclusive), 0 failed" in out
    code, out = _check(capsys, *files, "--max-quant-drop", "2.5", "--confidence", "0.95", "--inconclusive", "fail")
    assert code == 1 and "FAIL [quant-drop]" in out and "inconclusive" in out
    # Without --confidence: the point gate, as before (2.26 > 2.0 fails, whatever the noise).
    code, out = _check(capsys, *files, "--max-quant-drop", "2.0")
    assert code == 1 and "drop 2.2" in out and "allowed 2)" in out and "bootstrap" not in out


def test_quant_gate_without_detections_is_inconclusive(pair_dir, tmp_path, capsys):
    for name in ("f32", "int8"):
        rec = json.loads((pair_dir / f"eval_{name}.json").read_text())
        rec["detections_file"] = str(tmp_path / "gone.json")
        (tmp_path / f"eval_{name}.json").write_text(json.dumps(rec))
    code, out = _check(capsys, str(tmp_path), "--max-quant-drop", "1", "--confidence", "0.9")
    assert code == 0 and "WARN" in out and "not found here" in out
    code, _ = _check(capsys, str(tmp_path), "--max-quant-drop", "1", "--confidence", "0.9", "--inconclusive", "fail")
    assert code == 1
    assert main(["check", str(tmp_path), "--ap-tolerance", "1", "--confidence", "0.9"]) == 2


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_shows_the_paired_interval_and_greys_rare_classes(pair_dir, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(pair_dir), "--out", str(out), "--gallery", "0", "--quiet",
                 "--ci-resamples", "300"]) == 0
    (row,) = _csv(out / "tables" / "quant_overall.csv")
    widths = [float(w) for w in row["CI widths float/quant/paired"].split("/")]
    assert widths[2] < widths[0] / 2 and widths[2] < widths[1] / 2  # pairing: much narrower
    lo, hi = (float(x) for x in row["ΔAP CI paired"].strip("[]").split(", "))
    ulo, uhi = (float(x) for x in row["ΔAP CI unpaired"].strip("[]").split(", "))
    assert lo < float(row["ΔAP"]) < hi < 0 and ulo < lo and uhi > hi
    assert row["AP float CI"].startswith("[") and row["AP quant CI"].startswith("[")
    rows = _csv(out / "tables" / "quant_per_class.csv")
    assert all(r["boxes"] != "" and r["images"] != "" for r in rows)
    few = [r["few boxes"] != "" for r in rows]
    assert few == sorted(few)  # classes with enough boxes first, the rest after them
    assert all((int(r["boxes"]) < 10) == (r["few boxes"] != "") for r in rows)
    ranked = [float(r["ΔAP"]) for r in rows if not r["few boxes"] and r["ΔAP"]]
    assert ranked == sorted(ranked) and len(ranked) > 12
    page = (out / "report.html").read_text()
    assert "ΔAP CI paired" in page and "at least 10 ground-truth boxes" in page
    assert "ΔAP CI paired" in (out / "report.md").read_text()
    # The accuracy table carries each run's AP interval and the sampling verdict against the published AP.
    acc = {r["model"]: r for r in _csv(out / "tables" / "accuracy.csv")}
    assert acc["mb3-centernet-f32"]["AP CI"] == ""  # these records were made without an interval


    # With a higher bar, rare classes appear, greyed, after the ranked ones in the HTML table.
    assert main(["report", str(pair_dir), "--out", str(tmp_path / "r2"), "--gallery", "0", "--quiet",
                 "--ci-resamples", "0", "--min-instances", "60"]) == 0
    page = (tmp_path / "r2" / "report.html").read_text()
    assert '<tr class="muted">' in page
    (row,) = _csv(tmp_path / "r2" / "tables" / "quant_overall.csv")
    assert row["ΔAP CI paired"] == "" and row["CI"] == "no resamples asked for"


def test_old_records_without_intervals_still_report(tmp_path, capsys):
    f = eval_record("mb3-centernet-f32", 0.285, per_class={"person": 0.4, "skis": 0.3})
    q = eval_record("mb3-centernet-int8", 0.2, per_class={"person": 0.35, "skis": 0.15}, created="2099")
    for name, rec in (("f", f), ("q", q)):
        (tmp_path / f"{name}.json").write_text(json.dumps(rec))
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r"), "--gallery", "0", "--quiet"]) == 0
    (row,) = _csv(tmp_path / "r" / "tables" / "quant_overall.csv")
    assert row["ΔAP"] == "-8.5" and row["AP float CI"] == "" and "not found here" in row["CI"]
    rows = _csv(tmp_path / "r" / "tables" / "quant_per_class.csv")
    assert [r["class"] for r in rows] == ["skis", "person"] and all(r["boxes"] == "" for r in rows)
    assert main(["check", str(tmp_path / "f.json"), str(tmp_path / "q.json"), "--max-quant-drop", "10"]) == 0
