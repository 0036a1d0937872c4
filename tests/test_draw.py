"""Drawing: boxes land on their edges and nowhere inside, colours are fixed per class, labels read on any
background, and boxes that leave the picture are clipped to it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from synthetic import CATEGORY_NAME

from harness.measure.draw import (
    BLACK,
    COCO_NAMES,
    WHITE,
    Box,
    caption,
    class_colour,
    class_name,
    contrast_ratio,
    draw_boxes,
    prediction_box,
    side_by_side,
    text_colour,
    truth_box,
)
from harness.models.zoo import COCO80_IDS

GREY = (128, 128, 128)
H, W = 200, 300
DOG = 18


def grey(h: int = H, w: int = W) -> np.ndarray:
    return np.full((h, w, 3), GREY, np.uint8)


def px(im, x: int, y: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.asarray(im)[y, x])


def test_box_edges_take_the_class_colour_and_the_inside_stays_untouched():
    colour = class_colour(DOG)
    box = Box(100, 80, 200, 160, colour=colour)  # no label: only the outline may change pixels
    im = np.asarray(draw_boxes(grey(), [box], width=3))
    # Pillow draws the outline inward from the corners: columns 100..102 and 197..199, rows 80..82 and 157..159.
    for x, y in [(150, 80), (150, 82), (150, 157), (150, 159), (100, 120), (102, 120), (197, 120), (199, 120),
                 (100, 80), (199, 159)]:
        assert px(im, x, y) == colour, (x, y)
    for x, y in [(150, 83), (150, 156), (103, 120), (196, 120), (150, 120)]:  # just inside the line, the middle
        assert px(im, x, y) == GREY, (x, y)
    for x, y in [(150, 79), (150, 160), (99, 120), (200, 120)]:  # just outside
        assert px(im, x, y) == GREY, (x, y)
    changed = np.any(im != GREY, axis=2)
    assert changed.sum() == 100 * 80 - 94 * 74  # exactly the outline's pixels, nothing else


def test_the_input_array_is_not_modified():
    image = grey()
    draw_boxes(image, [prediction_box((10, 10, 50, 50), DOG, 0.9)])
    assert (image == GREY).all()


def test_label_sits_above_the_box_on_the_class_colour_with_contrasting_text():
    colour = class_colour(DOG)
    im = np.asarray(draw_boxes(grey(), [prediction_box((100, 80, 200, 160), DOG, 0.87)], width=3))
    above = im[:80, 100:200]
    in_label = np.all(above == colour, axis=2)
    assert in_label[-1].any() and in_label.sum() > 200  # a filled label ends right above the box
    ink = (np.abs(above.astype(int) - text_colour(colour)).sum(axis=2)
           < np.abs(above.astype(int) - colour).sum(axis=2))  # anti-aliased text: nearer the ink than the label
    assert ink.sum() > 20
    assert (im[84:156, 104:196] == GREY).all()  # nothing drawn inside the box


def test_label_goes_inside_when_there_is_no_room_above_and_stays_in_the_picture():
    colour = class_colour(1)
    box = prediction_box((W - 20, 0, W + 40, 60), 1, 0.5)  # top edge at row 0, runs off the right side
    im = np.asarray(draw_boxes(grey(), [box], width=2))
    label = np.all(im == colour, axis=2)
    rows, cols = np.nonzero(label)
    assert rows.min() == 0 and cols.max() == W - 1
    assert cols.min() < W - 20  # shifted left so the whole label fits, wider than the visible part of the box


def test_boxes_are_clipped_to_the_image():
    colour = class_colour(3)
    im = np.asarray(draw_boxes(grey(), [Box(-50, 20, W + 50, 120, colour=colour)], width=2))
    assert im.shape == (H, W, 3)
    for x in (0, 1, W - 2, W - 1):  # the cut sides are drawn along the border
        assert px(im, x, 70) == colour
    assert px(im, 2, 70) == GREY and px(im, W - 3, 70) == GREY
    assert px(im, 150, 20) == colour and px(im, 150, 119) == colour


@pytest.mark.parametrize("box", [Box(W + 5, 10, W + 50, 50), Box(10, -80, 60, -1), Box(5, 5, 4, 50),
                                 Box(float("nan"), 0, 10, 10)])
def test_a_box_with_nothing_inside_the_picture_draws_nothing(box):
    im = np.asarray(draw_boxes(grey(), [Box(box.xmin, box.ymin, box.xmax, box.ymax, label="x", colour=WHITE)]))
    assert (im == GREY).all()


def test_ground_truth_is_dashed_black_and_white_and_inside_stays_untouched():
    im = np.asarray(draw_boxes(grey(), [truth_box((40, 40, 240, 160), DOG)], width=2))
    top = im[40, 40:240]
    white = np.all(top == WHITE, axis=1)
    black = np.all(top == BLACK, axis=1)
    assert (white | black).all() and white.sum() > 50 and black.sum() > 50
    assert np.count_nonzero(np.diff(white.astype(int))) >= 10  # many dashes, not two halves
    assert (im[42:158, 42:238] == GREY).all()


def test_labels_are_drawn_over_every_outline():
    first = prediction_box((100, 100, 200, 180), DOG, 0.9)
    second = Box(90, 94, 250, 190, colour=(0, 0, 255))  # its top edge runs through the first box's label
    im = np.asarray(draw_boxes(grey(), [first, second], width=2))
    assert np.all(im[94:96, 100:200] == class_colour(DOG), axis=2).any()  # the label covers the outline there
    assert np.all(im[94:96, 90:100] == (0, 0, 255), axis=2).all()  # which is drawn beside it


def test_class_colours_are_fixed_distinct_and_saturated():
    colours = [class_colour(i) for i in COCO80_IDS]
    assert len(set(colours)) == 80
    closest = min(np.linalg.norm(np.subtract(a, b)) for a, b in itertools.combinations(colours, 2))
    assert closest > 15
    # Pinned: a class must look the same in every run, report and release.
    assert class_colour(1) == (77, 110, 191)
    assert class_colour(18) == (255, 194, 13)
    assert all(max(c) - min(c) > 60 for c in colours)  # never grey, so never mistaken for ground truth


@pytest.mark.parametrize("background", [class_colour(i) for i in COCO80_IDS] + [WHITE, BLACK, GREY, (119, 119, 119),
                                                                                 (255, 255, 0), (0, 0, 255)])
def test_label_text_reads_on_any_background(background):
    assert contrast_ratio(text_colour(background), background) >= 4.5  # WCAG AA for normal text


def test_coco_names_cover_the_80_official_ids():
    assert sorted(COCO_NAMES) == sorted(COCO80_IDS)
    assert COCO_NAMES == CATEGORY_NAME  # agrees with the independent table the synthetic datasets use
    assert class_name(1) == "person" and class_name(90) == "toothbrush"
    assert class_name(12) == "class 12"
    assert class_name(1, {1: "pedestrian"}) == "pedestrian"


def test_captions_keep_side_by_side_panels_aligned():
    from PIL import Image

    a = caption(Image.fromarray(grey(100, 120)), "ground truth: 5 boxes")
    b = caption(Image.fromarray(grey(100, 120)), "qqq ppp yyy, a caption far too long to fit in the panel")
    assert a.size == b.size and a.size[1] > 100
    assert (np.asarray(a)[-100:] == GREY).all()  # the picture sits below the bar, unchanged
    row = side_by_side([a, b], gap=4)
    assert row.size == (244, a.size[1])
