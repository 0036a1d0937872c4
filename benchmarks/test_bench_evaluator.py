"""The default COCO engine against pycocotools on a 5000-image, 500k-detection problem.

Target: the default engine at least 8x faster than pycocotools, with identical stats. pycocotools is
timed once (it takes minutes); the default engine is the benchmarked function.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from harness.models.zoo import COCO80_IDS
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import DEFAULT_ENGINE, score_results

IMAGES, DETS_PER_IMAGE, TARGET_RATIO = 5000, 100, 8.0


@pytest.fixture(scope="module")
def problem(tmp_path_factory) -> tuple[CocoGroundTruth, list[dict]]:
    rng = np.random.default_rng(1)
    images, anns, results = [], [], []
    for img_id in range(1, IMAGES + 1):
        w, h = int(rng.integers(320, 640)), int(rng.integers(240, 480))
        images.append({"id": img_id, "file_name": f"{img_id:012d}.jpg", "width": w, "height": h})
        n_gt = int(rng.integers(1, 12))
        gx, gy = rng.uniform(0, w * 0.8, n_gt), rng.uniform(0, h * 0.8, n_gt)
        gw, gh = rng.uniform(4, w * 0.2, n_gt), rng.uniform(4, h * 0.2, n_gt)
        gc = rng.choice(COCO80_IDS, n_gt)
        for j in range(n_gt):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(gc[j]),
                         "bbox": [float(gx[j]), float(gy[j]), float(gw[j]), float(gh[j])],
                         "area": float(gw[j] * gh[j]), "iscrowd": int(rng.random() < 0.02)})
        # Detections: jittered copies of the ground truth, the rest random boxes of random classes.
        src = rng.integers(0, n_gt, DETS_PER_IMAGE)
        near = rng.random(DETS_PER_IMAGE) < 0.3
        jit = rng.normal(0, 0.1, (DETS_PER_IMAGE, 4))
        boxes = np.where(near[:, None],
                         np.stack([gx[src] + jit[:, 0] * gw[src], gy[src] + jit[:, 1] * gh[src],
                                   gw[src] * (1 + jit[:, 2]), gh[src] * (1 + jit[:, 3])], 1),
                         np.stack([rng.uniform(0, w * 0.8, DETS_PER_IMAGE), rng.uniform(0, h * 0.8, DETS_PER_IMAGE),
                                   rng.uniform(2, w * 0.3, DETS_PER_IMAGE), rng.uniform(2, h * 0.3, DETS_PER_IMAGE)],
                                  1))
        cats = np.where(near, gc[src], rng.choice(COCO80_IDS, DETS_PER_IMAGE))
        scores = rng.random(DETS_PER_IMAGE)
        for b, c, s in zip(np.abs(boxes), cats, scores, strict=True):
            results.append({"image_id": img_id, "category_id": int(c), "bbox": [round(float(v), 2) for v in b],
                            "score": round(float(s), 5)})
    cats = [{"id": c, "name": f"class{c}"} for c in COCO80_IDS]
    path = tmp_path_factory.mktemp("coco5k") / "instances_val2017.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return CocoGroundTruth(path), results


def test_default_engine_vs_pycocotools(benchmark, problem):
    gt, results = problem
    assert len(results) == IMAGES * DETS_PER_IMAGE
    fast = benchmark.pedantic(score_results, args=(gt, results), kwargs={"engine": DEFAULT_ENGINE},
                              rounds=3, iterations=1)
    t0 = time.perf_counter()
    ref = score_results(gt, results, engine="pycocotools")
    reference_s = time.perf_counter() - t0
    ratio = reference_s / benchmark.stats.stats.median
    benchmark.extra_info.update({"pycocotools_s": reference_s, "speedup": ratio, "target_speedup": TARGET_RATIO})
    print(f"\npycocotools {reference_s:.1f} s, {DEFAULT_ENGINE} median {benchmark.stats.stats.median:.2f} s: "
          f"{ratio:.1f}x")
    for key, value in ref.stats.items():
        assert fast.stats[key] == pytest.approx(value, abs=1e-12), key
    assert ratio >= TARGET_RATIO
