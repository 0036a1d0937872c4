"""Synthetic scored sets for the interval checks: many images, a known answer, no model to run.

`weak_detector_set` is a weak detector over many classes, the shape of results where the bootstrap's bias is
largest (tests/test_bootstrap.py and benchmarks/interval_point.py). `degraded` derives a second model's
results from a first's on the same images (a quantized sibling: boxes jittered, scores perturbed), for the
paired difference's coverage (benchmarks/paired_coverage.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.scoring.coco import CocoGroundTruth

WIDTH, HEIGHT = 640, 480


def _entries(img: np.ndarray, cat: np.ndarray, boxes: np.ndarray, scores: np.ndarray) -> list[dict]:
    return [{"image_id": int(i), "category_id": int(c), "bbox": [round(float(v), 2) for v in b],
             "score": round(float(s), 6)} for i, c, b, s in zip(img, cat, boxes, scores, strict=True)]


def weak_detector_set(n_images: int, path: Path, *, seed: int = 0, dets: int = 100, classes: int = 80,
                      zipf: float = 0.7, found: float = 0.5) -> tuple[CocoGroundTruth, list[dict]]:
    """About 3 boxes per image over `classes` classes (class frequency ~ 1/rank^zipf), `found` of them
    detected with loose boxes (IoU spread over ~0.3..1) and scores that fall with the image's difficulty,
    the rest of each image's `dets` detections false positives with overlapping, lower scores: AP a few
    points, like a broken int8 conversion. Returns the ground truth (written to `path`) and the results."""
    rng = np.random.default_rng(seed)
    prior = 1.0 / np.arange(1, classes + 1) ** zipf
    prior /= prior.sum()
    counts = rng.poisson(3, n_images)
    img = np.repeat(np.arange(1, n_images + 1), counts)
    hard = rng.normal(0, 0.7, n_images)[img - 1]
    k = img.size
    side = np.exp(rng.uniform(np.log(12), np.log(300), k))
    w = np.minimum(side * np.exp(rng.normal(0, 0.3, k)), WIDTH - 1)
    h = np.minimum(side * np.exp(rng.normal(0, 0.3, k)), HEIGHT - 1)
    x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
    cat = rng.choice(classes, k, p=prior) + 1
    anns = [{"id": j + 1, "image_id": int(img[j]), "category_id": int(cat[j]),
             "bbox": [float(x[j]), float(y[j]), float(w[j]), float(h[j])], "area": float(w[j] * h[j]), "iscrowd": 0}
            for j in range(k)]
    hit = rng.random(k) < found
    s = rng.gamma(2, 0.1, k)[hit]
    e = rng.normal(0, 1, (4, s.size)) * s
    xh, yh, wh, hh = x[hit], y[hit], w[hit], h[hit]
    tp_boxes = np.stack([xh + e[0] * wh, yh + e[1] * hh, wh * np.exp(e[2]), hh * np.exp(e[3])], 1)
    tp_scores = 1 / (1 + np.exp(-rng.normal(-1.0 - hard[hit], 1)))
    per_image = np.bincount(img[hit], minlength=n_images + 1)[1:]
    n_fp = np.maximum(dets - per_image, 0)
    fp_img = np.repeat(np.arange(1, n_images + 1), n_fp)
    fs = np.exp(rng.uniform(np.log(10), np.log(250), fp_img.size))
    fp_boxes = np.stack([rng.uniform(0, WIDTH - fs), rng.uniform(0, HEIGHT - 0.75 * fs), fs, 0.75 * fs], 1)
    fp_scores = 1 / (1 + np.exp(-rng.normal(-2.5 + 0.3 * rng.normal(0, 0.7, n_images)[fp_img - 1], 1)))
    fp_cat = rng.integers(0, classes, fp_img.size) + 1
    results = _entries(img[hit], cat[hit], tp_boxes, tp_scores) + _entries(fp_img, fp_cat, fp_boxes, fp_scores)
    images = [{"id": i, "file_name": f"{i:06d}.jpg", "width": WIDTH, "height": HEIGHT} for i in range(1, n_images + 1)]
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(classes)]
    Path(path).write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    return CocoGroundTruth(path), results


def degraded(results: list[dict], *, seed: int, jitter: float = 0.03, score_noise: float = 0.3,
             image_effect: float = 0.0) -> list[dict]:
    """A sibling model's results on the same images: each box's corners moved by N(0, jitter) of its size,
    each score's logit by N(0, score_noise), plus a per-image shift of the logits N(0, image_effect) (some
    images suffer more from quantization than others). Its AP is lower by an amount only scoring tells."""
    rng = np.random.default_rng(seed)
    img = np.asarray([r["image_id"] for r in results])
    ids, inv = np.unique(img, return_inverse=True)
    shift = rng.normal(0, image_effect, ids.size)[inv] if image_effect else np.zeros(img.size)
    out = []
    for r, d, ds in zip(results, rng.normal(0, jitter, (len(results), 4)), rng.normal(0, score_noise, len(results)) +
                        shift, strict=True):
        x, y, w, h = r["bbox"]
        x0, y0, x1, y1 = x + d[0] * w, y + d[1] * h, x + w + d[2] * w, y + h + d[3] * h
        p = min(max(r["score"], 1e-6), 1 - 1e-6)
        z = np.log(p / (1 - p)) + ds
        out.append({"image_id": r["image_id"], "category_id": r["category_id"],
                    "bbox": [round(float(v), 2) for v in (x0, y0, max(x1 - x0, 0.5), max(y1 - y0, 0.5))],
                    "score": round(float(1 / (1 + np.exp(-z))), 6)})
    return out
