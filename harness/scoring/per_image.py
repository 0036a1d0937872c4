"""How a model did on each image, with the official COCO matching (pycocotools' own per-image pass).

The report's gallery picks pictures by these scores; they live here, beside the evaluator, so that the
harness has one scorer: nothing outside `harness.scoring` re-implements COCO matching.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.scoring.cocoapi import cocoeval

_RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCO's 101 recall thresholds


@dataclass(frozen=True)
class ImageScore:
    """How one record did on one image, at IoU 0.5 with the official matching."""

    ap50: float | None  # mean over the image's classes with ground truth; None when it has none
    gt: int  # ground-truth boxes that count (not crowd)
    shown: int  # detections at or above the display threshold
    matched: int  # of those, how many hit a ground-truth box
    top_score: float  # best detection score on the image (0 when none)





def image_scores(gt, results: list[dict], image_ids: Sequence[int], score_threshold: float) -> dict[int, ImageScore]:
    """Per-image AP at IoU 0.5 and matched-box counts, from pycocotools' own per-image matching."""
    ids = list(image_ids)
    wanted = set(ids)
    ev = cocoeval(gt, (d for d in results if d["image_id"] in wanted), "report galleries")
    with contextlib.redirect_stdout(io.StringIO()):
        ev.params.imgIds = ids
        ev.params.iouThrs = np.array([0.5])
        ev.params.areaRng, ev.params.areaRngLbl = [[0, 1e10]], ["all"]
        ev.params.maxDets = [100]
        ev.evaluate()
    per_class: dict[int, list[float]] = {i: [] for i in ids}
    gt_n, shown, matched = dict.fromkeys(ids, 0), dict.fromkeys(ids, 0), dict.fromkeys(ids, 0)
    top: dict[int, float] = {}
    for e in ev.evalImgs:
        if e is None:
            continue
        img = e["image_id"]
        scores = np.asarray(e["dtScores"], np.float64)
        hit = np.asarray(e["dtMatches"][0]) != 0
        ignored = np.asarray(e["dtIgnore"][0], bool)
        n_gt = int(np.sum(np.asarray(e["gtIgnore"]) == 0))
        gt_n[img] += n_gt
        keep = scores >= score_threshold
        shown[img] += int(keep.sum())
        matched[img] += int((keep & hit & ~ignored).sum())
        if scores.size:
            top[img] = max(top.get(img, 0.0), float(scores.max()))
        if n_gt:
            per_class[img].append(_ap(hit[~ignored], n_gt))
    return {i: ImageScore(float(np.mean(per_class[i])) if per_class[i] else None, gt_n[i], shown[i], matched[i],
                          top.get(i, 0.0)) for i in ids}


def _ap(hits_by_score: np.ndarray, n_gt: int) -> float:
    """COCO's interpolated AP (101 recall points) of one class on one image; detections best first."""
    tp = np.cumsum(hits_by_score)
    fp = np.cumsum(~hits_by_score)
    if tp.size == 0:
        return 0.0
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # the envelope: best precision at recall >= r
    idx = np.searchsorted(recall, _RECALL_POINTS, side="left")
    q = np.where(idx < precision.size, precision[np.minimum(idx, precision.size - 1)], 0.0)
    return float(q.mean())
