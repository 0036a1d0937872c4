"""The x86-vs-board agreement rule on hand-computed cases (tests/detection_agreement.py)."""

from __future__ import annotations

import pytest
from detection_agreement import agreement, iou_xywh


def det(image: int, cls: int, bbox: list[float], score: float) -> dict:
    return {"image_id": image, "category_id": cls, "bbox": bbox, "score": score}


def test_iou_by_hand():
    assert iou_xywh([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou_xywh([0, 0, 10, 10], [0, 0, 10, 9.5]) == pytest.approx(95 / 100)  # inside: 95 of 100
    assert iou_xywh([0, 0, 10, 10], [1, 0, 10, 10]) == pytest.approx(90 / 110)  # shifted 1: 9x10 of 110
    assert iou_xywh([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0


def test_each_condition_can_break_a_match():
    ref = [det(1, 5, [0, 0, 10, 10], 0.80)]
    assert agreement(ref, [det(1, 5, [0, 0, 10, 9.5], 0.76)]).matched == 1  # IoU 0.95, score off by 0.04
    assert agreement(ref, [det(1, 5, [1, 0, 10, 10], 0.80)]).matched == 0  # IoU 0.818 < 0.9
    assert agreement(ref, [det(1, 5, [0, 0, 10, 10], 0.74)]).matched == 0  # score off by 0.06 > 0.05
    assert agreement(ref, [det(1, 6, [0, 0, 10, 10], 0.80)]).matched == 0  # another class
    assert agreement(ref, [det(2, 5, [0, 0, 10, 10], 0.80)]).matched == 0  # another image


def test_only_reference_detections_over_the_floor_count_and_matches_are_one_to_one():
    ref = [det(1, 5, [0, 0, 10, 10], 0.9), det(1, 5, [0, 0, 10, 10], 0.88), det(1, 5, [50, 50, 10, 10], 0.29)]
    other = [det(1, 5, [0, 0, 10, 10], 0.9)]  # one counterpart for two identical reference boxes
    a = agreement(ref, other)
    assert (a.matched, a.total) == (1, 2)  # the 0.29 one is under the 0.3 floor
    assert a.fraction == 0.5
    assert agreement([], other).fraction == 1.0
