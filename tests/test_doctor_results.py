"""The results-file doctor as a mutation table on real data.

The clean file is the cocoapi known-answer pair in the mirror (100 val2014 images, the fake bbox results
whose AP pycocotools gives as 0.505). For each finding the test plants that fault, asks the doctor, and
requires it to name the fault as the top finding with a corrected AP within 0.005 of the clean AP (on the
same images). The clean file must raise no finding worth 0.5 AP points.
"""

from __future__ import annotations

import copy
import json
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.analyse.doctor.findings import Finding, format_findings, format_together
from harness.analyse.doctor.results import (
    diagnose,
    diagnose_results,
    doctor_file,
    doctor_record_body,
    read_results_leniently,
)
from harness.errors import HarnessError
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import score_results

TOLERANCE = 0.005


@pytest.fixture(scope="module")
def known_answer(mirror: Path) -> tuple[CocoGroundTruth, list[int], list[dict], Path]:
    d = mirror / "coco" / "known_answer"
    gt = CocoGroundTruth(d / "instances_val2014_100.json")
    ids = sorted(i.id for i in gt.images)[:100]
    path = d / "instances_val2014_fakebbox100_results.json"
    return gt, ids, json.loads(path.read_text()), path


def ap(gt: CocoGroundTruth, results: list[dict], ids: list[int]) -> float:
    return float(score_results(gt, results, ids, "faster").stats["AP"])


def scorable(gt: CocoGroundTruth, results: list[dict]) -> list[dict]:
    """The entries COCO eval can take: known categories and images (the others it ignores or refuses)."""
    images = {i.id for i in gt.images}
    return [r for r in results if r["category_id"] in gt.categories and r["image_id"] in images]


def _sizes(gt: CocoGroundTruth) -> dict[int, tuple[int, int]]:
    return {i.id: (i.width, i.height) for i in gt.images}


def _by_image(results: list[dict]) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = defaultdict(list)
    for r in results:
        out[r["image_id"]].append(r)
    return out


def _with(r: dict, **kw: object) -> dict:
    return {**copy.deepcopy(r), **kw}


# Each mutation: (finding id it must produce, plant(gt, clean, ids) -> (corrupted, clean reference results,
# image ids the clean reference is scored on)). The reference is the clean file unless the fault destroys
# information no correction can restore (classes a 90-slot map cannot express; images never run).
Plant = Callable[[CocoGroundTruth, list[dict], list[int]], tuple[list[dict], list[dict], list[int]]]


def _cats(gt: CocoGroundTruth) -> list[int]:
    return sorted(gt.categories)


def plant_offset(gt, clean, ids):
    return [_with(r, category_id=r["category_id"] + 1) for r in clean], clean, ids


def plant_index0(gt, clean, ids):
    pos = {c: i for i, c in enumerate(_cats(gt))}
    return [_with(r, category_id=pos[r["category_id"]]) for r in clean], clean, ids


def plant_index1(gt, clean, ids):
    pos = {c: i for i, c in enumerate(_cats(gt))}
    return [_with(r, category_id=pos[r["category_id"]] + 1) for r in clean], clean, ids


def plant_slots_as_index(gt, clean, ids):
    """A 90-slot model (id = slot + 1) written through the 80-class list: slot s -> cats[s]; s >= 80 lost."""
    cats = _cats(gt)
    kept = [r for r in clean if r["category_id"] - 1 < len(cats)]
    return [_with(r, category_id=cats[r["category_id"] - 1]) for r in kept], kept, ids


def plant_xyxy(gt, clean, ids):
    return [_with(r, bbox=[x, y, x + w, y + h]) for r in clean for x, y, w, h in [r["bbox"]]], clean, ids


def plant_normalised(gt, clean, ids):
    s = _sizes(gt)
    out = []
    for r in clean:
        (x, y, w, h), (iw, ih) = r["bbox"], s[r["image_id"]]
        out.append(_with(r, bbox=[x / iw, y / ih, w / iw, h / ih]))
    return out, clean, ids


def plant_yx(gt, clean, ids):
    return [_with(r, bbox=[y, x, h, w]) for r in clean for x, y, w, h in [r["bbox"]]], clean, ids


def plant_center(gt, clean, ids):
    return [_with(r, bbox=[x + w / 2, y + h / 2, w, h]) for r in clean for x, y, w, h in [r["bbox"]]], clean, ids


def plant_threshold(gt, clean, ids):
    return [r for r in clean if r["score"] >= 0.3], clean, ids


def plant_max_detections(gt, clean, ids):
    """Pad every image to 150 detections with tiny boxes in its corner, scored below every real one."""
    out = copy.deepcopy(clean)
    cats = _cats(gt)
    for i, rs in _by_image(clean).items():
        for n in range(150 - len(rs)):
            out.append({"image_id": i, "category_id": cats[n % len(cats)], "bbox": [1.0 + n, 1.0, 2.0, 2.0],
                        "score": 0.001})
    return out, clean, ids


def plant_missing(gt, clean, ids):
    """Results of every fifth image lost (a crashed shard)."""
    gone = set(ids[::5])
    return [r for r in clean if r["image_id"] not in gone], clean, [i for i in ids if i not in gone]


def plant_duplicates(gt, clean, ids):
    """Every detection of half of the images written twice (a resumed run appended its shard again)."""
    twice = set(ids[::2])
    return copy.deepcopy(clean) + [copy.deepcopy(r) for r in clean if r["image_id"] in twice], clean, ids


def plant_negative_width(gt, clean, ids):
    """Widths written with the wrong sign (x is still the left edge): every box is impossible, AP 0."""
    return [_with(r, bbox=[x, y, -w, h]) for r in clean for x, y, w, h in [r["bbox"]]], clean, ids


def plant_frame_512(gt, clean, ids):
    """Boxes left in the 512x512 input of a stretching model instead of the original image's pixels."""
    s = _sizes(gt)
    out = []
    for r in clean:
        (x, y, w, h), (iw, ih) = r["bbox"], s[r["image_id"]]
        fx, fy = 512 / iw, 512 / ih
        out.append(_with(r, bbox=[x * fx, y * fy, w * fx, h * fy]))
    return out, clean, ids


def plant_letterbox_512(gt, clean, ids):
    """Boxes left in the 512x512 input of a model that letterboxes the image at the top left (TF OD API)."""
    s = _sizes(gt)
    return [_with(r, bbox=[v * 512 / max(s[r["image_id"]]) for v in r["bbox"]]) for r in clean], clean, ids


def plant_image_positions(gt, clean, ids):
    """Image ids written as each image's position (0-based) in the sorted image ids, as a dataset loop counts."""
    pos = {i: n for n, i in enumerate(sorted(x.id for x in gt.images))}
    return [_with(r, image_id=pos[r["image_id"]]) for r in clean], clean, ids


def plant_tf_boxes(gt, clean, ids):
    """The TF OD API's detection_boxes written as they come: [ymin, xmin, ymax, xmax] normalised."""
    s = _sizes(gt)
    out = []
    for r in clean:
        (x, y, w, h), (iw, ih) = r["bbox"], s[r["image_id"]]
        out.append(_with(r, bbox=[y / ih, x / iw, (y + h) / ih, (x + w) / iw]))
    return out, clean, ids


MUTATIONS: list[tuple[str, str, Plant]] = [
    ("category-offset", "ids + 1", plant_offset),
    ("category-index", "0..79 indices", plant_index0),
    ("category-index", "1..80 indices", plant_index1),
    ("category-index", "90 slots read as 80", plant_slots_as_index),
    ("box-xyxy", "[x1,y1,x2,y2]", plant_xyxy),
    ("box-normalised", "boxes / image size", plant_normalised),
    ("box-yx", "[y,x,h,w]", plant_yx),
    ("box-center", "[cx,cy,w,h]", plant_center),
    ("score-threshold", "cut at 0.3", plant_threshold),
    ("max-detections", "150 per image", plant_max_detections),
    ("missing-images", "20% images lost", plant_missing),
    ("duplicates", "half the images twice", plant_duplicates),
    ("box-impossible", "negative widths", plant_negative_width),
    ("box-frame", "512x512 stretched frame", plant_frame_512),
    ("box-frame", "512 letterbox frame", plant_letterbox_512),
    ("image-ids", "positions for ids", plant_image_positions),
    ("box-tf-normalised", "TF [ymin,xmin,ymax,xmax]", plant_tf_boxes),
]


def test_clean_file_raises_no_alarm(known_answer) -> None:
    gt, ids, clean, _ = known_answer
    t0 = time.perf_counter()
    findings = diagnose_results(gt, clean, ids)
    wall = time.perf_counter() - t0
    print(f"\nclean known-answer file: AP {ap(gt, clean, ids):.4f}, {len(findings)} findings, {wall:.2f} s")
    assert all(abs(f.change) < 0.005 for f in findings), format_findings(findings)
    assert not [f for f in findings if f.ap_after is None and f.id in ("score-threshold", "category-unknown")]


def test_mutation_table(known_answer) -> None:
    gt, ids, clean, _ = known_answer
    clean_ap = ap(gt, clean, ids)
    assert abs(clean_ap - 0.505) < 0.0005  # the published known answer: the engine and data are right
    rows, failures = [], []
    for fid, what, plant in MUTATIONS:
        bad, ref, ref_ids = plant(gt, copy.deepcopy(clean), ids)
        t0 = time.perf_counter()
        findings = diagnose_results(gt, bad, ids)
        wall = time.perf_counter() - t0
        planted_ap = ap(gt, scorable(gt, bad), ids)
        ref_ap = ap(gt, ref, ref_ids)
        top = findings[0] if findings else None
        after = top.ap_after if top and top.id == fid else None
        rows.append((fid, what, planted_ap, after, ref_ap, wall, ", ".join(f.id for f in findings)))
        if top is None or top.id != fid:
            failures.append(f"{what}: top finding {top.id if top else None}, expected {fid}\n"
                            f"{format_findings(findings)}")
        elif top.ap_after is not None and abs(top.ap_after - ref_ap) > TOLERANCE:
            failures.append(f"{what}: corrected AP {top.ap_after:.4f} vs clean {ref_ap:.4f}")
        elif top.ap_after is None and fid not in ("score-threshold",):
            failures.append(f"{what}: {fid} should be scored, not only flagged")
    print("\nmutation table (AP in points; clean = the clean file on the same images)")
    print(f"{'finding':16} {'planted fault':22} {'planted':>8} {'corrected':>9} {'clean':>6} {'wall s':>6}  findings")
    for fid, what, p, a, c, w, all_ids in rows:
        a_s = "flag" if a is None else f"{100 * a:.2f}"
        print(f"{fid:16} {what:22} {100 * p:8.2f} {a_s:>9} {100 * c:6.2f} {w:6.2f}  {all_ids}")
    assert not failures, "\n\n".join(failures)


def test_planted_faults_lower_the_ap(known_answer) -> None:
    """The table is not vacuous: every scored fault really costs AP as planted (or inflates it: none here)."""
    gt, ids, clean, _ = known_answer
    clean_ap = ap(gt, clean, ids)
    for fid, what, plant in MUTATIONS:
        if fid in ("max-detections",):
            continue
        bad, _, _ = plant(gt, copy.deepcopy(clean), ids)
        assert ap(gt, scorable(gt, bad), ids) < clean_ap - 0.02, what


def published_ap(mirror: Path) -> float:
    """The bbox AP pycocotools prints for the known-answer pair, at full precision (EXPECTED.txt)."""
    text = (mirror / "coco" / "known_answer" / "EXPECTED.txt").read_text()
    line = next(x for x in text.splitlines() if x.startswith("FULL precision") and x.split()[-13] == "bbox")
    return float(line.split("[", 1)[1].split(",")[0])


def test_two_faults_at_once_are_both_named_and_together_give_the_clean_ap_back(known_answer, mirror) -> None:
    """Corner boxes and a category offset: each correction alone leaves AP near 0 (the other fault still
    spoils every match); both together must give back the published known answer."""
    gt, ids, clean, _ = known_answer
    bad, _, _ = plant_offset(gt, clean, ids)
    bad, _, _ = plant_xyxy(gt, bad, ids)
    d = diagnose(gt, bad, ids)
    named = {f.id: f for f in d.findings}
    assert {"category-offset", "box-xyxy"} <= set(named)
    assert all(named[i].ap_after < 0.1 for i in ("category-offset", "box-xyxy"))  # alone, neither is enough
    assert d.together is not None and set(d.together["findings"]) == {"category-offset", "box-xyxy"}
    assert d.together["ap_after"] == pytest.approx(published_ap(mirror), abs=0.0005)  # EXPECTED.txt: 0.5046
    assert format_together(d.together) == "all fixes together (category-offset + box-xyxy): AP 0.0 -> 50.5"


def test_a_single_fault_has_no_together_line(known_answer) -> None:
    gt, ids, clean, _ = known_answer
    bad, _, _ = plant_xyxy(gt, clean, ids)
    assert diagnose(gt, bad, ids).together is None


@pytest.mark.parametrize("what, score", [("all 1.0", lambda r: 1.0),
                                         ("rounded to 0.1", lambda r: round(r["score"], 1))])
def test_scores_that_cannot_rank_are_named_tied_not_a_threshold_cut(known_answer, what, score) -> None:
    """Nothing was cut (every detection is there): the ranking is what is lost."""
    gt, ids, clean, _ = known_answer
    bad = [_with(r, score=score(r)) for r in clean]
    findings = diagnose_results(gt, bad, ids)
    assert [f.id for f in findings] == ["scores-tied"], format_findings(findings)
    assert findings[0].ap_after is None and "ranking is lost" in findings[0].evidence
    if what == "all 1.0":
        assert findings[0].evidence.startswith(f"all {len(clean)} scores are 1")


def test_a_cut_file_is_still_a_threshold_not_tied(known_answer) -> None:
    gt, ids, clean, _ = known_answer
    assert "scores-tied" not in {f.id for f in diagnose_results(gt, [r for r in clean if r["score"] >= 0.3], ids)}


@pytest.mark.parametrize("entries", ["none", "strangers"])
def test_nothing_to_score_is_a_finding(known_answer, entries) -> None:
    """An empty list, or detections only for images the annotation file does not have: named, never
    "no problem found"."""
    gt, ids, clean, _ = known_answer
    bad = [] if entries == "none" else [_with(r, image_id=r["image_id"] + 10**7) for r in clean]
    findings = diagnose_results(gt, bad, ids)
    assert [f.id for f in findings] == ["empty-results"] and findings[0].evidence.startswith("nothing to score")


def test_zero_sizes_and_boxes_outside_the_image_are_counted(known_answer) -> None:
    """Ten boxes of zero width and ten moved wholly past the right edge: both counted, by those numbers."""
    gt, ids, clean, _ = known_answer
    s = _sizes(gt)
    bad = copy.deepcopy(clean)
    for r in bad[:10]:
        r["bbox"][2] = 0.0
    for r in bad[10:20]:
        r["bbox"][0] = s[r["image_id"]][0] + 50.0
    (f,) = [f for f in diagnose_results(gt, bad, ids) if f.id == "box-impossible"]
    assert "10 have a zero width or height" in f.evidence and "10 pass their image's edge" in f.evidence


def test_an_ap_far_below_the_expected_one_with_no_cause_is_a_finding(known_answer) -> None:
    """Categories scrambled at random (no convention explains them): with an expectation, the doctor says the
    AP is far below it and that nothing it checks explains it; the clean file with the same expectation is
    silent; without an expectation nothing is claimed."""
    import random

    gt, ids, clean, _ = known_answer
    cats = sorted(gt.categories)
    rng = random.Random(3)
    bad = [_with(r, category_id=rng.choice(cats)) for r in clean]
    d = diagnose(gt, bad, ids, expected=0.505, expected_from="the known answer")
    (f,) = [f for f in d.findings if f.id == "below-expected"]
    assert f.ap_after is None and "no cause the doctor checks explains it" in f.evidence
    assert not [f for f in diagnose(gt, clean, ids, expected=0.505).findings if f.id == "below-expected"]
    assert not [f for f in diagnose(gt, bad, ids).findings if f.id == "below-expected"]


def test_unknown_categories_and_malformed_entries_are_findings_not_errors(known_answer, tmp_path: Path) -> None:
    gt, ids, clean, _ = known_answer
    bad = [*copy.deepcopy(clean[:50]), {"image_id": ids[0], "category_id": 999, "bbox": [1, 2, 3, 4], "score": 0.5},
           {"image_id": ids[0], "bbox": [1, 2, 3], "score": 0.5}, "junk"]
    f = tmp_path / "r.json"
    f.write_text(json.dumps(bad))
    findings, body = doctor_file(gt, f, ids)
    named = {x.id for x in findings}
    assert {"category-unknown", "malformed"} <= named
    assert body["findings"] == [x.to_dict() for x in findings]
    assert set(body["findings"][0]) == {"id", "ap_before", "ap_after", "evidence", "fix"}
    assert body["detection_count"] == 51 and body["dataset"]["image_count"] == 100
    assert json.loads(json.dumps(body)) == body
    text = format_findings(findings)
    assert "category-unknown" in text and "\n1. " in text


def test_results_for_unannotated_images_are_flagged(known_answer) -> None:
    gt, ids, clean, _ = known_answer
    bad = copy.deepcopy(clean) + [_with(r, image_id=r["image_id"] + 10**9) for r in clean[:20]]
    findings = diagnose_results(gt, bad, ids)
    assert [f.id for f in findings] == ["missing-images"] and findings[0].ap_after is None


def test_lenient_reader_errors(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(HarnessError, match="not JSON"):
        read_results_leniently(p)
    p.write_text('{"a": 1}')
    with pytest.raises(HarnessError, match="JSON list"):
        read_results_leniently(p)
    with pytest.raises(HarnessError, match="not found"):
        read_results_leniently(tmp_path / "missing.json")


def test_findings_sort_by_impact_flags_last() -> None:
    fs = [Finding("a", None, None, "e", "f"), Finding("b", 0.1, 0.2, "e", "f"), Finding("c", 0.1, 0.4, "e", "f")]
    body = doctor_record_body(fs, _FakeGt(), None, 0, [1])
    assert [f["id"] for f in body["findings"]] == ["c", "b", "a"]


class _FakeGt:
    """Enough of CocoGroundTruth for doctor_record_body's dataset description."""

    def describe(self, ids: list[int]) -> dict:
        return {"image_count": len(ids)}


@pytest.mark.slow
def test_real_model_results_raise_no_alarm_and_a_planted_fault_is_found(mirror: Path) -> None:
    """mb3-centernet (float32 TFLite) on the mirror's 159 val2017 images: a real top-100 file, no alarm;
    the same file with [y, x, h, w] boxes is named box-yx and corrected to the clean AP."""
    from harness.models.pipeline import Pipeline
    from harness.models.zoo import get_card
    from harness.scoring.evaluator import CocoEvaluator

    gt = CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json", mirror / "coco" / "val2017")
    pipe = Pipeline.open(get_card("mb3-centernet-f32"), mirror)
    ev = CocoEvaluator(gt)
    for info in gt.images:
        ev.process(info, pipe.detect(pipe.read(gt.image_path(info), (info.width, info.height))))
    clean, ids = ev.results, ev.image_ids
    clean_ap = ap(gt, clean, ids)
    t0 = time.perf_counter()
    findings = diagnose_results(gt, clean, ids)
    wall = time.perf_counter() - t0
    print(f"\nmb3-centernet-f32 on {len(ids)} val2017 images: {len(clean)} detections, AP {clean_ap:.4f}, "
          f"doctor {wall:.2f} s, findings {[f.id for f in findings]}")
    assert clean_ap > 0.15
    assert all(abs(f.change) < 0.005 for f in findings), format_findings(findings)
    bad, _, _ = plant_yx(gt, clean, ids)
    found = diagnose_results(gt, bad, ids)
    assert found[0].id == "box-yx" and abs(found[0].ap_after - clean_ap) <= TOLERANCE
