"""TIDE error decomposition (harness.scoring.errors): planted faults show as their own error type.

Expected values come from outside the code: a perfect detector has AP50 1 and no error; boxes moved by a
third of their width and height overlap their box at IoU (2/3)^2 / (2 - (2/3)^2) = 2/7, inside TIDE's
localisation band [0.1, 0.5); a detection of the wrong class on its box is TIDE's classification error by
definition; an image counted twice by weight scores as the same image written twice into the files.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from harness.scoring.coco import CocoGroundTruth
from harness.scoring.error_pairs import paired_errors
from harness.scoring.errors import ERROR_TYPES, _entries, assign, decompose, weighted_ap50


@pytest.fixture(scope="module")
def gt(mirror):
    return CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json")


def _perfect(gt: CocoGroundTruth, seed: int = 0) -> list[dict]:
    """The ground truth as detections (crowd boxes left out), with distinct random scores."""
    rng = random.Random(seed)
    return [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": list(a["bbox"]),
             "score": rng.uniform(0.05, 1.0)} for a in gt.dataset["annotations"] if not a.get("iscrowd")]


def _shifted(results: list[dict]) -> list[dict]:
    out = []
    for r in results:
        x, y, w, h = r["bbox"]
        out.append({**r, "bbox": [x + w / 3, y + h / 3, w, h]})
    return out


def _relabelled(results: list[dict], cat_ids: list[int]) -> list[dict]:
    """Every third detection given the next category id (a wrong class, the box unchanged)."""
    nxt = {c: cat_ids[(i + 1) % len(cat_ids)] for i, c in enumerate(cat_ids)}
    return [{**r, "category_id": nxt[r["category_id"]]} if i % 3 == 0 else r for i, r in enumerate(results)]


def _errors(gt, results) -> dict:
    return decompose(assign(gt, results))["sizes"]


def test_perfect_detections_have_no_error(gt):
    d = _errors(gt, _perfect(gt))
    assert d["all"]["AP50"] == pytest.approx(1.0)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in d["all"]["errors"].values())
    assert all(v == 0 for v in d["all"]["counts"].values())
    assert set(d) == {"all", "small", "medium", "large"}


def test_boxes_shifted_by_a_third_are_localisation_errors(gt):
    d = _errors(gt, _shifted(_perfect(gt)))["all"]
    # Only boxes that happen to reach IoU 0.5 with a neighbour of their class stay true positives.
    assert d["AP50"] < 0.05
    # Where a box's shifted detection overlaps a neighbour of its class more, it claims that one and the box
    # itself is missed: some misses, no other error type.
    assert d["counts"]["loc"] > 0.85 * sum(d["counts"].values())
    assert d["counts"]["cls"] == d["counts"]["both"] == d["counts"]["dupe"] == d["counts"]["bkg"] == 0
    total = sum(d["errors"].values())
    assert d["errors"]["loc"] > 0.8 * total, d["errors"]
    assert d["errors"]["loc"] == max(d["errors"].values())


def test_a_third_of_labels_changed_is_classification(gt):
    perfect = _perfect(gt)
    d = _errors(gt, _relabelled(perfect, sorted(gt.categories)))["all"]
    n_changed = len(range(0, len(perfect), 3))
    assert d["counts"]["cls"] == pytest.approx(n_changed, rel=0.02)  # a few land on a box of the new class
    total = sum(d["errors"].values())
    assert d["errors"]["cls"] > 0.8 * total, d["errors"]
    # Fixing the classes gives every box its true positive back: AP50 returns to 1.
    assert d["AP50"] + d["errors"]["cls"] == pytest.approx(1.0, abs=0.01)


def test_planted_faults_on_real_detections(mirror):
    """The cocoapi demo's fake results (a real detector's boxes on 100 val2014 images): shifting them adds
    mostly localisation error, relabelling a third adds mostly classification error."""
    ka = mirror / "coco" / "known_answer"
    gt = CocoGroundTruth(ka / "instances_val2014_100.json")
    results = json.loads((ka / "instances_val2014_fakebbox100_results.json").read_text())
    ids = sorted(i.id for i in gt.images)[:100]
    base = decompose(assign(gt, results, ids))["sizes"]["all"]
    for fault, main in ((_shifted(results), "loc"), (_relabelled(results, sorted(gt.categories)), "cls")):
        d = decompose(assign(gt, fault, ids))["sizes"]["all"]
        gained = {t: d["errors"][t] - base["errors"][t] for t in ERROR_TYPES}
        assert gained[main] > 0.6 * sum(v for v in gained.values() if v > 0), (main, gained)
        assert gained[main] == max(gained.values())


def test_weights_count_an_image_as_often_as_it_is_written(gt, tmp_path):
    """weighted_ap50 with integer image weights equals the AP of the files with each image repeated."""
    results = _shifted(_perfect(gt))[::2] + _perfect(gt, seed=1)[1::2]
    ids = [i.id for i in gt.images][:12]
    weights = np.array([[2, 0, 1, 3, 1, 1, 0, 2, 1, 1, 1, 1]], np.float64)
    a = assign(gt, results, ids)
    got = {}
    for fix in (None, *ERROR_TYPES):
        e = _entries(a, fix)
        present = np.bincount(_entries(a, None).g_cat, weights=weights[0][_entries(a, None).g_img],
                              minlength=len(a.cat_ids))[None] > 0
        got[fix] = float(weighted_ap50(e, len(a.cat_ids), weights, present)[0])
    # The same data written out: copy c of image i becomes image id i * 10 + c.
    data = json.loads(gt.path.read_text())
    images, anns, dets = [], [], []
    for img, k in zip(ids, weights[0].astype(int), strict=True):
        for c in range(k):
            new = img * 10 + c
            images += [{**i, "id": new} for i in data["images"] if i["id"] == img]
            anns += [{**x, "id": x["id"] * 10 + c, "image_id": new} for x in data["annotations"]
                     if x["image_id"] == img]
            dets += [{**r, "image_id": new} for r in results if r["image_id"] == img]
    path = tmp_path / "repeated.json"
    path.write_text(json.dumps({**data, "images": images, "annotations": anns}))
    rep = CocoGroundTruth(path)
    b = decompose(assign(rep, dets))["sizes"]["all"]
    assert got[None] == pytest.approx(b["AP50"], abs=2e-6)  # the record rounds to 6 digits
    for t in ERROR_TYPES:
        assert got[t] - got[None] == pytest.approx(b["errors"][t], abs=2e-6), t


def test_paired_errors_see_a_planted_shift(gt):
    """A 'quantized' model that shifts a third of the float model's boxes adds localisation error, with an
    interval that excludes 0; the other error types barely move."""
    perfect = _perfect(gt)
    noisy = [{**r, "bbox": [r["bbox"][0] + r["bbox"][2] / 3, r["bbox"][1] + r["bbox"][3] / 3, *r["bbox"][2:]]}
             if i % 3 == 0 else r for i, r in enumerate(perfect)]
    p = paired_errors(assign(gt, perfect), assign(gt, noisy), resamples=100, sizes=("all",))
    loc = p["sizes"]["all"]["loc"]
    assert loc["delta"] > 0.2 and loc["lo"] > 0
    others = [abs(p["sizes"]["all"][t]["delta"]) for t in ERROR_TYPES if t != "loc"]
    assert max(others) < 0.1 * loc["delta"]


def test_the_doctor_says_mostly_localisation_on_small_objects(gt):
    """Only the small boxes shifted (by a third, as above): the doctor's profile names localisation and small."""
    from harness.analyse.doctor.errors import profile_of

    small = {a["id"] for a in gt.dataset["annotations"] if a["area"] < 32**2}
    rng = random.Random(2)
    results = []
    for a in gt.dataset["annotations"]:
        if a.get("iscrowd"):
            continue
        x, y, w, h = a["bbox"]
        box = [x + w / 3, y + h / 3, w, h] if a["id"] in small else [x, y, w, h]
        results.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": box,
                        "score": rng.uniform(0.05, 1.0)})
    p = profile_of(gt, results, [i.id for i in gt.images])
    assert p["type"] == "loc" and p["size"] == "small" and p["share"] > 0.5
    assert p["line"].startswith("where the AP goes: mostly localisation") and "small objects" in p["line"]
