"""Synthetic scored sets for the interval checks: many images, a known answer, no model to run.

`weak_detector_set` is a weak detector over many classes, the shape of results where the bootstrap's bias is
largest (tests/test_bootstrap.py and benchmarks/interval_point.py). `degraded` derives a second model's
results from a first's on the same images (a quantized sibling: boxes jittered, scores perturbed), for the
paired difference's coverage (benchmarks/paired_coverage.py). `coco_shaped_set` is val2017's size and shape
for the full-scale scoring benchmark (benchmarks/full_coco.py) and the engines' slow exactness test.
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


# --------------------------------------------------------------------------------------------------
# A seeded COCO-shaped set: val2017's size and shape (ground truth and a detector's results), no pixels.
#
# val2017 has 5,000 images, 36,781 boxes (about 7.4 an image, 1% crowd regions) over 80 of 90 category ids,
# 41% small / 34% medium / 24% large; a detector keeps up to 100 detections an image. `coco_shaped_set` draws a set
# with those proportions: each box found with a probability that grows with its size (loose boxes, scores
# higher for found ones), a few duplicates, and false positives up to 100 detections an image. Scoring,
# intervals and memory do not look at pixels, so the images are named but not written.

# The 80 category ids of instances_val2017.json (1..90 without 12, 26, 29, 30, 45, 66, 68, 69, 71, 83).
COCO_CATEGORY_IDS = tuple(i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))
SIZES = ((640, 480), (640, 427), (480, 640), (640, 424), (500, 375))  # common val2017 image sizes


def _rounded(a: np.ndarray) -> list:
    return np.round(a, 2).tolist()


def coco_shaped_set(n_images: int, *, seed: int = 0, dets: int = 100) -> tuple[dict, list[dict]]:
    """(ground-truth dataset dict, results list) of `n_images` images; the same seed gives the same set."""
    rng = np.random.default_rng(seed)
    k_cat = len(COCO_CATEGORY_IDS)
    prior = 1.0 / np.arange(1, k_cat + 1) ** 1.1  # one class (person) dominates, as in COCO
    prior /= prior.sum()
    size = rng.integers(0, len(SIZES), n_images)
    width = np.asarray([SIZES[s][0] for s in size])
    height = np.asarray([SIZES[s][1] for s in size])
    counts = np.minimum(rng.geometric(1 / 7.4, n_images) - 1 + (rng.random(n_images) < 0.5), 60)
    img = np.repeat(np.arange(n_images), counts)
    n = img.size
    # sqrt(area) log-uniform-ish, tuned so about 41/34/24% fall under 32^2 / 96^2 / above
    side = np.exp(rng.normal(np.log(45), 1.05, n)).clip(2, None)
    aspect = np.exp(rng.normal(0, 0.45, n))
    w = np.minimum(side * aspect, width[img] - 1)
    h = np.minimum(side / aspect, height[img] - 1)
    x, y = rng.uniform(0, width[img] - w), rng.uniform(0, height[img] - h)
    cat = np.asarray(COCO_CATEGORY_IDS)[rng.choice(k_cat, n, p=prior)]
    crowd = rng.random(n) < 0.01
    anns = [{"id": j + 1, "image_id": int(img[j]) + 1, "category_id": int(cat[j]),
             "bbox": [float(x[j]), float(y[j]), float(w[j]), float(h[j])], "area": float(w[j] * h[j]),
             "iscrowd": int(crowd[j])} for j in range(n)]
    images = [{"id": i + 1, "file_name": f"{i + 1:012d}.jpg", "width": int(width[i]), "height": int(height[i])}
              for i in range(n_images)]
    categories = [{"id": c, "name": f"class{c}", "supercategory": "thing"} for c in COCO_CATEGORY_IDS]
    gt = {"images": images, "annotations": anns, "categories": categories}

    # Found boxes: likelier for big ones; corners jittered by a share of the size; scores higher.
    found = rng.random(n) < 0.25 + 0.6 * np.clip(np.log(w * h) / np.log(300**2), 0, 1)
    e = rng.normal(0, 0.12, (4, n)) * rng.gamma(2, 0.5, n)
    tx, ty, tw, th = x + e[0] * w, y + e[1] * h, w * np.exp(e[2]), h * np.exp(e[3])
    tscore = 1 / (1 + np.exp(-rng.normal(1.0, 1.2, n)))
    dup = found & (rng.random(n) < 0.15)  # a second, looser box on the same object
    tp_i = np.concatenate([img[found], img[dup]])
    tp_c = np.concatenate([cat[found], cat[dup]])
    jit = rng.normal(0, 0.25, (4, int(dup.sum())))
    tp_box = np.concatenate([np.stack([tx, ty, tw, th], 1)[found],
                             np.stack([x[dup] + jit[0] * w[dup], y[dup] + jit[1] * h[dup], w[dup] * np.exp(jit[2]),
                                       h[dup] * np.exp(jit[3])], 1)])
    tp_s = np.concatenate([tscore[found], tscore[dup] * 0.5])
    per_image = np.bincount(tp_i, minlength=n_images)
    keep = np.ones(tp_i.size, bool)
    if per_image.max(initial=0) > dets:  # an image with more found boxes than the cap keeps its first ones
        order = np.argsort(tp_i, kind="stable")
        rank = np.arange(tp_i.size) - np.repeat(np.cumsum(per_image) - per_image, per_image)
        keep[order[rank >= dets]] = False
        per_image = np.minimum(per_image, dets)
    tp_i, tp_c, tp_box, tp_s = tp_i[keep], tp_c[keep], tp_box[keep], tp_s[keep]
    fp_i = np.repeat(np.arange(n_images), dets - per_image)
    m = fp_i.size
    fs = np.exp(rng.uniform(np.log(6), np.log(300), m))
    fa = np.exp(rng.normal(0, 0.4, m))
    fw, fh = np.minimum(fs * fa, width[fp_i] - 1), np.minimum(fs / fa, height[fp_i] - 1)
    fp_box = np.stack([rng.uniform(0, width[fp_i] - fw), rng.uniform(0, height[fp_i] - fh), fw, fh], 1)
    fp_s = 1 / (1 + np.exp(-rng.normal(-3.0, 1.2, m)))
    fp_c = np.asarray(COCO_CATEGORY_IDS)[rng.choice(k_cat, m, p=prior)]
    all_i = np.concatenate([tp_i, fp_i]) + 1
    all_c = np.concatenate([tp_c, fp_c])
    all_b = _rounded(np.concatenate([tp_box, fp_box]))
    all_s = np.round(np.concatenate([tp_s, fp_s]), 6).tolist()
    order = np.argsort(all_i, kind="stable")  # a model's results file lists image by image
    results = [{"image_id": int(all_i[j]), "category_id": int(all_c[j]), "bbox": all_b[j], "score": all_s[j]}
               for j in order]
    return gt, results


def write_coco_shaped(root: Path, n_images: int, *, seed: int = 0) -> tuple[Path, Path]:
    """The set's instances_synthetic.json and results.json under `root`; returns their paths."""
    gt, results = coco_shaped_set(n_images, seed=seed)
    root.mkdir(parents=True, exist_ok=True)
    gt_path, res_path = root / "instances_synthetic.json", root / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    return gt_path, res_path
