"""`harness doctor` from the command line: exit 0 on a clean file, 1 with the cause named first, 2 for bad input,
and a kind-"doctor" record that the record reader and the report accept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.records.reader import read_record


def _known_answer(mirror: Path) -> tuple[Path, Path]:
    d = mirror / "coco" / "known_answer"
    return d / "instances_val2014_100.json", d / "instances_val2014_fakebbox100_results.json"


def test_a_clean_results_file_exits_0_and_writes_a_doctor_record(mirror, tmp_path, capsys):
    gt, results = _known_answer(mirror)
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--gt", str(gt), "--results", str(results), "--json", str(out)]) == 0
    assert "no problem found" in capsys.readouterr().out
    rec = read_record(out, kind="doctor")
    assert rec["findings"] == [] and rec["dataset"]["image_count"] == 100


def test_xyxy_boxes_are_named_first_and_the_command_exits_1(mirror, tmp_path, capsys):
    gt, results = _known_answer(mirror)
    entries = json.loads(results.read_text())
    for e in entries:  # the planted fault: corners instead of width and height
        x, y, w, h = e["bbox"]
        e["bbox"] = [x, y, x + w, y + h]
    bad = tmp_path / "xyxy.json"
    bad.write_text(json.dumps(entries))
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--gt", str(gt), "--results", str(bad), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    top = read_record(out, kind="doctor")["findings"][0]
    assert top["id"] == "box-xyxy" and top["ap_after"] > top["ap_before"] + 0.3
    assert printed.splitlines()[1].split()[:2] == ["1", "box-xyxy"]  # the ranked table's first row


def test_an_empty_results_file_is_nothing_to_score_and_exits_1(mirror, tmp_path, capsys):
    gt, _ = _known_answer(mirror)
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--gt", str(gt), "--results", str(empty), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "nothing to score" in printed and "no problem found" not in printed
    assert [f["id"] for f in read_record(out, kind="doctor")["findings"]] == ["empty-results"]


def test_two_faults_print_and_record_all_fixes_together(mirror, tmp_path, capsys):
    """Corner boxes and category ids + 1: the table scores each alone; the line after it, both at once."""
    gt, results = _known_answer(mirror)
    entries = json.loads(results.read_text())
    for e in entries:
        x, y, w, h = e["bbox"]
        e["bbox"], e["category_id"] = [x, y, x + w, y + h], e["category_id"] + 1
    bad = tmp_path / "two.json"
    bad.write_text(json.dumps(entries))
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--gt", str(gt), "--results", str(bad), "--expect", "50.5", "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "all fixes together (category-offset + box-xyxy): AP 0.0 -> 50.5" in printed
    rec = read_record(out, kind="doctor")
    assert rec["together"]["ap_after"] == pytest.approx(0.5046, abs=0.0005)  # the known answer (EXPECTED.txt)
    assert rec["expected"] == {"ap": 0.505, "from": "the expected AP (--expect)"}
    assert "below-expected" not in {f["id"] for f in rec["findings"]}  # together they reach it


@pytest.mark.parametrize("argv, message", [
    (["doctor", "--gt", "a.json", "--results", "b.json", "--expect", "0"], "--expect is an AP in points"),
    (["doctor", "--gt", "a.json", "--results", "b.json", "--expect", "505"], "--expect is an AP in points"),
    (["doctor", "mb3-centernet-f32", "--expect", "25"], "--expect is for a results file"),
    (["doctor"], "say what to examine"),
    (["doctor", "--gt", "x.json"], "needs both --gt"),
    (["doctor", "mb3-centernet-f32", "--gt", "a.json", "--results", "b.json"], "not both"),
    (["doctor", "mb3-centernet-f32", "--max-images", "0"], "--max-images must be at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:") and message in err and "\n" not in err


def test_the_report_shows_a_doctor_records_findings(mirror, tmp_path):
    """A doctor record among the records gets its own ranked section in the Markdown and the HTML."""
    from harness.analyse.report.build import build_report

    gt, results = _known_answer(mirror)
    entries = json.loads(results.read_text())
    for e in entries:  # category ids shifted by one: the label-map fault people hit most
        e["category_id"] += 1
    bad = tmp_path / "shifted.json"
    bad.write_text(json.dumps(entries))
    out = tmp_path / "doctor.json"
    assert main(["doctor", "--gt", str(gt), "--results", str(bad), "--json", str(out)]) == 1
    report = build_report([read_record(out)], tmp_path / "report", gallery_images=0)
    assert "Why a mAP may not match" in report.markdown_text
    row = report.tables["doctor"].iloc[0]
    assert row["finding"] == "category-offset" and row["rank"] == 1 and row["AP after"] > row["AP before"]
    assert "category-offset" in report.html.read_text()
