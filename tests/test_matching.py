"""match_once skips pycocotools' evaluateImg() where its answer is known; the arrays must not change.

The reference is pycocotools' own evaluate(): every evalImgs entry, flattened here row by row, must be the
row match_once keeps (same score, matched-and-not-ignored and not-ignored flags per area and threshold),
and the ground truth that counts must be the same. Data: noisy detections on the mirror (crowd regions,
duplicates, boxes of classes absent from their image, every size range) and the cocoapi known answer.
Both ways of matching are held to it: the loop ("pycocotools") and ultrafast-pycocotools' outcomes ("auto").
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from test_bootstrap import noisy_results
from test_evaluator import random_problem

from harness.scoring.coco import CocoGroundTruth
from harness.scoring.matching import match_once


def reference(gt: CocoGroundTruth, results: list[dict], ids: list[int]) -> tuple[dict, dict]:
    """{(cat, img, rank): (score, tp [A,T], valid [A,T])} and {(cat, area, img): count} from pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    anns = [{"id": n, "image_id": r["image_id"], "category_id": r["category_id"], "bbox": r["bbox"],
             "area": r["bbox"][2] * r["bbox"][3], "score": r["score"], "iscrowd": 0} for n, r in enumerate(results, 1)]
    with contextlib.redirect_stdout(io.StringIO()):
        cg, cd = COCO(), COCO()
        cg.dataset = gt.dataset
        cd.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": anns}
        cg.createIndex()
        cd.createIndex()
        ev = COCOeval(cg, cd, "bbox")
        ev.params.imgIds = ids
        ev.evaluate()
    p = ev.params
    n_img, A = len(p.imgIds), len(p.areaRng)
    dets: dict = {}
    gts: dict = {}
    for k in range(len(p.catIds)):
        for a in range(A):
            for i in range(n_img):
                e = ev.evalImgs[(k * A + a) * n_img + i]
                if e is None:
                    continue
                n = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
                if n:
                    gts[k, a, i] = n
                ig = np.asarray(e["dtIgnore"], bool)
                for r, s in enumerate(e["dtScores"]):
                    row = dets.setdefault((k, i, r), (s, np.zeros((A, len(p.iouThrs)), bool),
                                                      np.zeros((A, len(p.iouThrs)), bool)))
                    row[1][a] = (np.asarray(e["dtMatches"])[:, r] != 0) & ~ig[:, r]
                    row[2][a] = ~ig[:, r]
    return dets, gts


MATCHERS = ("pycocotools", "auto")


def compare(gt: CocoGroundTruth, results: list[dict], ids: list[int], engine: str) -> int:
    m = match_once(gt, results, ids, engine=engine)
    dets, gts = reference(gt, results, sorted(ids))
    assert len(m.det_score) == len(dets)
    for n in range(len(m.det_score)):
        s, tp, valid = dets[int(m.det_cat[n]), int(m.det_img[n]), int(m.det_rank[n])]
        assert m.det_score[n] == s
        assert np.array_equal(m.tp[:, :, n], tp) and np.array_equal(m.valid[:, :, n], valid)
    got = {(int(k), int(a), int(i)): int(c) for k, a, i, c in zip(m.gt_cat, m.gt_area, m.gt_img, m.gt_count,
                                                                  strict=True)}
    assert got == gts
    return int(m.tp.sum())


@pytest.mark.parametrize("engine", MATCHERS)
def test_matches_are_pycocotools_evalimgs_row_for_row(mirror: Path, engine: str) -> None:
    gt = CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json")
    results = noisy_results(gt, seed=3)
    ids = [i.id for i in gt.images][:60]
    # More than 100 detections of one class in one image: maxDets cuts both paths at the same place.
    img = gt.images[0]
    results += [{"image_id": img.id, "category_id": 1, "bbox": [float(j), 5.0, 30.0, 40.0], "score": 0.5}
                for j in range(120)]
    assert compare(gt, results, ids, engine) > 0


@pytest.mark.parametrize("engine", MATCHERS)
def test_matches_on_the_known_answer(mirror: Path, engine: str) -> None:
    ka = mirror / "coco" / "known_answer"
    gt = CocoGroundTruth(ka / "instances_val2014_100.json")
    results = json.loads((ka / "instances_val2014_fakebbox100_results.json").read_text())
    ids = sorted(i.id for i in gt.images)[:100]
    assert compare(gt, results, ids, engine) > 0


@pytest.mark.parametrize("engine", MATCHERS)
def test_matches_without_detections(mirror: Path, engine: str) -> None:
    gt = CocoGroundTruth(mirror / "coco" / "annotations" / "instances_val2017.json")
    assert compare(gt, [], [i.id for i in gt.images][:5], engine) == 0


@pytest.mark.parametrize("decimals", [None, 1], ids=["distinct-scores", "tied-scores"])
def test_both_matchers_give_the_same_arrays(tmp_path: Path, decimals: int | None) -> None:
    """Crowd regions, ground-truth areas unlike w*h, images without detections, tied scores: equal arrays."""
    dataset, results = random_problem(5, n_images=150, score_decimals=decimals)
    path = tmp_path / "instances_random.json"
    path.write_text(json.dumps(dataset))
    gt = CocoGroundTruth(path)
    loop, fast = (match_once(gt, results, engine=e) for e in MATCHERS)
    for name in ("image_ids", "cat_ids", "cat_names", "det_cat", "det_img", "det_rank", "det_score", "tp", "valid",
                 "gt_cat", "gt_area", "gt_img", "gt_count"):
        assert np.array_equal(np.asarray(getattr(loop, name)), np.asarray(getattr(fast, name))), name
    assert loop.tp.any()
