"""pycocotools' COCOeval over the harness's ground truth and a results list, built one way for every user.

The per-image scores of the report's gallery and the matching that bootstrap intervals re-accumulate both
start from pycocotools' own matching; the detections reach it as the evaluator gives them (area w*h,
iscrowd 0, ids from 1), so every number agrees with `harness.scoring.evaluator`'s.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable

from harness.errors import HarnessError


def cocoeval(gt, results: Iterable[dict], needed_for: str):
    """An unevaluated pycocotools COCOeval (bbox) of `results` against `gt` (a CocoGroundTruth).

    `needed_for` names the feature in the error when pycocotools is missing.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise HarnessError(f"{needed_for} need pycocotools: pip install 'centernet-harness[coco]'") from None
    anns = []
    for n, r in enumerate(results, start=1):
        x, y, w, h = (float(v) for v in r["bbox"])
        anns.append({"id": n, "image_id": r["image_id"], "category_id": r["category_id"], "bbox": [x, y, w, h],
                     "area": w * h, "score": float(r["score"]), "iscrowd": 0})
    with contextlib.redirect_stdout(io.StringIO()):
        cg, cd = COCO(), COCO()
        cg.dataset = gt.dataset
        cd.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"], "annotations": anns}
        cg.createIndex()
        cd.createIndex()
        return COCOeval(cg, cd, "bbox")
