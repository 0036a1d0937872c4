"""TF OD API CenterNet decoding, pinned by rendering ground truth into heads and scoring them (numpy only).

A synthetic COCO (images of several sizes, several classes, official ids with gaps) is read back, each
image's GT boxes are RENDERED as the heads a perfect TF OD API CenterNet would output for it, in the
model's 512x512 input frame (the image is resized to 512x512 without keeping its aspect ratio, so a
box normalised to the image is the same box normalised to the model input). Decoding those heads with
`decode_tfod_centernet` and scoring with `CocoEvaluator` must give AP 1.0. The negative checks prove
the round trip can fail: a rendering with x and y swapped, or with class ids off by one, scores < 0.5.
"""

from __future__ import annotations

import numpy as np
import pytest
from synthetic import ImageSpec, make_coco, render_tfod_heads

from harness.models.decoders import decode_tfod_centernet
from harness.models.zoo import COCO80_IDS, TFOD_PARAMS
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import CocoEvaluator

# Official ids: 1 person, 13 stop sign (the first id after the gap at 12), 18 dog, 27 backpack, 44 bottle,
# 62 chair, 85 clock, 90 toothbrush. Boxes are well apart and off the diagonal, so a transposed box
# overlaps nothing; they are of very different sizes (small, medium and large areas).
SPECS = [
    ImageSpec(640, 480, [(1, (0.05, 0.55, 0.45, 0.95)), (13, (0.60, 0.05, 0.90, 0.30)),
                         (18, (0.55, 0.60, 0.95, 0.98))]),
    ImageSpec(500, 375, [(27, (0.10, 0.60, 0.20, 0.70)), (44, (0.50, 0.05, 0.95, 0.35))]),
    ImageSpec(333, 500, [(62, (0.05, 0.40, 0.35, 0.95)), (85, (0.70, 0.10, 0.74, 0.16))]),
    ImageSpec(427, 640, [(90, (0.30, 0.62, 0.90, 0.97)), (1, (0.02, 0.30, 0.20, 0.55))]),
]


@pytest.fixture(scope="module")
def gt(tmp_path_factory) -> CocoGroundTruth:
    root = make_coco(tmp_path_factory.mktemp("coco"), SPECS)
    return CocoGroundTruth(root / "annotations" / "instances_val2017.json", root / "val2017")


def gt_objects(gt: CocoGroundTruth, image_id: int) -> list[tuple[int, tuple[float, float, float, float]]]:
    """One image's GT as (official category id, box normalised to the image [ymin, xmin, ymax, xmax])."""
    info = gt.image(image_id)
    out = []
    for a in gt.dataset["annotations"]:
        if a["image_id"] == image_id:
            x, y, w, h = a["bbox"]
            out.append((a["category_id"], (y / info.height, x / info.width, (y + h) / info.height,
                                           (x + w) / info.width)))
    return out


def label_map_index(category_id: int) -> int:
    """The TF OD API label map: class index 0..89 is official id index + 1."""
    return category_id - 1


def render_and_score(gt: CocoGroundTruth, peaks: str, class_index=label_map_index, swap_xy: bool = False) -> float:
    """Render every image's GT into heads, decode with the card's parameters, return COCO AP."""
    ev = CocoEvaluator(gt)
    params = {**TFOD_PARAMS, "peaks": peaks}
    for info in gt.images:
        objects = [(class_index(c), (b[1], b[0], b[3], b[2]) if swap_xy else b) for c, b in gt_objects(gt, info.id)]
        heads = render_tfod_heads(objects, blob=3.0)
        dets = decode_tfod_centernet(heads, **params)
        # One detection per object above 0.5: the blob's neighbours were removed by peaks or NMS.
        assert int((dets.scores > 0.5).sum()) == len(objects)
        ev.process(info, dets)
    return ev.evaluate().stats["AP"]


def test_synthetic_coco_has_what_the_render_test_needs(gt):
    """Several image sizes, ids above 12 (where label-map index and 80-class index differ), all sizes."""
    assert len({(i.width, i.height) for i in gt.images}) == len(SPECS)
    ids = {a["category_id"] for a in gt.dataset["annotations"]}
    assert {i for i in ids if i > 12 and COCO80_IDS.index(i) != label_map_index(i)}
    areas = [a["area"] for a in gt.dataset["annotations"]]
    assert min(areas) < 32**2 and max(areas) > 96**2


@pytest.mark.parametrize("peaks", ["maxpool", "nms"])
def test_rendered_ground_truth_decodes_to_ap_1(gt, peaks):
    """Heads rendered from GT boxes decode back to those boxes and classes, at each image's size.

    object_center logit peak at the centre cell (floor(cy), floor(cx)) and class index id - 1,
    box/scale = (h, w) in cells, box/offset = sub-cell (dy, dx); stride 4 over a 512x512 input.
    """
    assert render_and_score(gt, peaks) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("peaks", ["maxpool", "nms"])
def test_decoded_boxes_match_gt_pixels(gt, peaks):
    """The decoded best boxes are the GT boxes to float precision, not merely IoU > 0.95."""
    from harness.scoring.coco import to_results

    for info in gt.images:
        objects = gt_objects(gt, info.id)
        heads = render_tfod_heads([(label_map_index(c), b) for c, b in objects])
        dets = decode_tfod_centernet(heads, **{**TFOD_PARAMS, "peaks": peaks})
        results = to_results(info, dets)[: len(objects)]
        want = sorted((a["category_id"], a["bbox"]) for a in gt.dataset["annotations"] if a["image_id"] == info.id)
        got = sorted((r["category_id"], r["bbox"]) for r in results)
        assert [c for c, _ in got] == [c for c, _ in want]
        np.testing.assert_allclose([b for _, b in got], [b for _, b in want], atol=2e-3)


@pytest.mark.parametrize("peaks", ["maxpool", "nms"])
def test_swapping_x_and_y_in_the_rendering_fails(gt, peaks):
    """Negative check: heads with y and x exchanged (peak at (x, y), scale (w, h), offset (dx, dy))."""
    assert render_and_score(gt, peaks, swap_xy=True) < 0.5


@pytest.mark.parametrize("peaks", ["maxpool", "nms"])
def test_class_ids_off_by_one_fail(gt, peaks):
    """Negative check: rendering official id c at class index c (not c - 1; 90 wraps to 0) shifts every class."""
    assert render_and_score(gt, peaks, class_index=lambda c: c % 90) < 0.5


def test_80_class_index_instead_of_label_map_fails(gt):
    """Negative check: a model whose index is the position among the 80 classes (e.g. mb3-centernet's
    heads) read with the 90-entry label map is right only for ids 1..11; here that is 'person' alone.
    """
    assert render_and_score(gt, "maxpool", class_index=COCO80_IDS.index) < 0.5


def test_render_places_the_peak_where_the_decoder_looks():
    """The rendering itself, on one box: centre (70.4, 76.8) cells -> peak at cell (70, 76), offset (0.4, 0.8)."""
    heads = render_tfod_heads([(43, (0.30, 0.35, 0.80, 0.85))])
    z = heads["object_center"][0]
    assert np.unravel_index(np.argmax(z), z.shape) == (70, 76, 43)
    np.testing.assert_allclose(heads["box/scale"][0, 70, 76], (64.0, 64.0), atol=1e-4)
    np.testing.assert_allclose(heads["box/offset"][0, 70, 76], (0.4, 0.8), atol=1e-4)
