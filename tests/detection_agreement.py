"""Do two runs of one model find the same objects? (An emulated aarch64 board against x86, say.)

The rule: of the reference's detections scoring at least 0.3, at least 95% must have a
counterpart in the other run on the same image with the same class, IoU >= 0.9 and a score within 0.05.
Counterparts are taken one to one, the reference's highest scores first.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Agreement:
    matched: int
    total: int  # the reference's detections at or above the score floor

    @property
    def fraction(self) -> float:
        return self.matched / self.total if self.total else 1.0


def iou_xywh(a: list[float], b: list[float]) -> float:
    """Intersection over union of two COCO boxes [x, y, width, height]."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def agreement(reference: list[dict], other: list[dict], *, min_score: float = 0.3, min_iou: float = 0.9,
              max_score_diff: float = 0.05) -> Agreement:
    """How many of REFERENCE's detections (COCO results: image_id, category_id, bbox, score) scoring at least
    MIN_SCORE have a counterpart in OTHER."""
    wanted = sorted((d for d in reference if d["score"] >= min_score), key=lambda d: -d["score"])
    free = list(other)
    matched = 0
    for d in wanted:
        for i, o in enumerate(free):
            if (o["image_id"] == d["image_id"] and o["category_id"] == d["category_id"]
                    and abs(o["score"] - d["score"]) <= max_score_diff and iou_xywh(o["bbox"], d["bbox"]) >= min_iou):
                matched += 1
                del free[i]
                break
    return Agreement(matched, len(wanted))
