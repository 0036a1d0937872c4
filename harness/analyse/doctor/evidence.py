"""Cheap evidence for the results-file doctor: on a sample, do detections agree with the ground truth?

Two questions, each answerable in milliseconds on a few thousand detections: does a detection's category
appear in its image's ground truth, and does its box overlap a ground-truth box at IoU >= 0.5. A
candidate correction is worth scoring (the slow part) only when it makes the answers clearly better.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from harness.scoring.coco import CocoGroundTruth

# Evidence gates: a candidate is scored when its evidence rate beats the file's own by both margins.
EVIDENCE_GAIN = 0.05
EVIDENCE_RATIO = 1.5
# Detections per image the evidence looks at (the highest scored), and images sampled at most.
SAMPLE_PER_IMAGE = 10
SAMPLE_IMAGES = 500

BoxFix = Callable[[list[float], tuple[int, int]], list[float]]


class GtIndex:
    """Per image: non-crowd ground-truth boxes (xyxy), their categories, and the image size."""

    def __init__(self, gt: CocoGroundTruth, image_ids: Sequence[int]) -> None:
        ids = set(image_ids)
        boxes: dict[int, list[list[float]]] = defaultdict(list)
        cats: dict[int, set[int]] = defaultdict(set)
        for a in gt.dataset["annotations"]:
            if a["image_id"] in ids and not a.get("iscrowd", 0):
                x, y, w, h = a["bbox"]
                boxes[a["image_id"]].append([x, y, x + w, y + h])
                cats[a["image_id"]].add(a["category_id"])
        self.boxes = {i: np.asarray(b, np.float64) for i, b in boxes.items()}
        self.cats = cats
        self.size = {i.id: (i.width, i.height) for i in gt.images}


def sample(results: Sequence[dict], image_ids: set[int]) -> list[dict]:
    """The SAMPLE_PER_IMAGE best-scored detections of up to SAMPLE_IMAGES annotated images."""
    per: dict[int, list[dict]] = defaultdict(list)
    for r in results:
        if r["image_id"] in image_ids:
            per[r["image_id"]].append(r)
    out = []
    for i in sorted(per)[:SAMPLE_IMAGES]:
        out.extend(sorted(per[i], key=lambda r: -r["score"])[:SAMPLE_PER_IMAGE])
    return out


def category_rate(sampled: list[dict], index: GtIndex, remap: Callable[[int], int | None] | None = None) -> float:
    """Fraction of sampled detections whose (remapped) category is annotated in their image."""
    if not sampled:
        return 0.0
    hits = 0
    for r in sampled:
        c = remap(r["category_id"]) if remap else r["category_id"]
        hits += c is not None and c in index.cats.get(r["image_id"], ())
    return hits / len(sampled)


def box_rate(sampled: list[dict], index: GtIndex, fix: BoxFix | None = None) -> float:
    """Fraction of sampled detections whose (corrected) box overlaps a ground-truth box at IoU >= 0.5."""
    if not sampled:
        return 0.0
    per: dict[int, list[list[float]]] = defaultdict(list)
    for r in sampled:
        per[r["image_id"]].append(fix(r["bbox"], index.size.get(r["image_id"], (1, 1))) if fix else r["bbox"])
    hits = 0
    for image_id, boxes in per.items():
        gtb = index.boxes.get(image_id)
        if gtb is None or not len(gtb):
            continue
        b = np.asarray(boxes, np.float64)[:, None, :]  # detections x 1 x 4 against 1 x ground truth x 4
        x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
        ix = np.clip(np.minimum(x + w, gtb[:, 2]) - np.maximum(x, gtb[:, 0]), 0, None)
        iy = np.clip(np.minimum(y + h, gtb[:, 3]) - np.maximum(y, gtb[:, 1]), 0, None)
        inter = ix * iy
        union = np.clip(w, 0, None) * np.clip(h, 0, None) + (gtb[:, 2] - gtb[:, 0]) * (gtb[:, 3] - gtb[:, 1]) - inter
        hits += int(np.any(inter >= 0.5 * np.where(union > 0, union, np.inf), axis=1).sum())
    return hits / len(sampled)


def suggests(rate: float, base: float) -> bool:
    """Whether a correction's evidence rate beats the file's own by both margins."""
    return rate >= base + EVIDENCE_GAIN and rate >= base * EVIDENCE_RATIO
