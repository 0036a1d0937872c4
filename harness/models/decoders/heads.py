"""The head layouts: one decoder per layout (TF OD API CenterNet, mb3-centernet's ltrb, post-processed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from harness.errors import HarnessError
from harness.models.decoders.base import Detections, _batch1, _class_ids, register_decoder
from harness.models.decoders.peaks import center_valid_mask, greedy_nms, top_k_cells, top_k_centers


@register_decoder("tfod_centernet", heads=("object_center", "box/scale", "box/offset"))
def decode_tfod_centernet(
    heads: Mapping[str, np.ndarray],
    *,
    class_ids: Sequence[int],
    stride: int = 4,
    input_size: Sequence[int] = (512, 512),
    top_k: int = 100,
    peaks: str = "maxpool",
    nms_iou: float = 0.5,
    true_shape: Sequence[int] | None = None,
    center_mask: str = "tfod",
) -> Detections:
    """TF OD API CenterNet heads: object_center logits, box/scale (h, w) and box/offset (dy, dx) in cells.

    `peaks="maxpool"` is center_net_meta_arch.py's postprocess: sigmoid, centres masked by the true
    shape, 3x3 max-pool peaks with PEAK_EPSILON tolerance on the probabilities, top-k, boxes clipped to
    the grid and normalised by the true shape. `peaks="nms"` is NXP's decode: plain top-k, then
    class-agnostic box NMS at `nms_iou` (evaluate.py). `true_shape` (h, w) is the image content in
    input pixels (letterboxing); default the whole input. Box arithmetic is float32, in TF's order.
    """
    logits = _batch1(heads, "object_center", 3)
    scale = _batch1(heads, "box/scale", 3).astype(np.float32, copy=False)
    offset = _batch1(heads, "box/offset", 3).astype(np.float32, copy=False)
    if peaks not in ("maxpool", "nms"):
        raise HarnessError(f"peaks must be 'maxpool' or 'nms', not {peaks!r}")
    gh, gw, _ = logits.shape
    true = tuple(int(v) for v in (true_shape if true_shape is not None else input_size))
    valid = center_valid_mask((gh, gw), true_shape, stride, center_mask)
    scores, ys, xs, cs = top_k_centers(logits, top_k, peaks == "maxpool", valid)
    hh = np.maximum(scale[ys, xs, 0], np.float32(0))
    ww = np.maximum(scale[ys, xs, 1], np.float32(0))
    cy = ys.astype(np.float32) + offset[ys, xs, 0]
    cx = xs.astype(np.float32) + offset[ys, xs, 1]
    two = np.float32(2)
    boxes = np.stack([
        np.clip(cy - hh / two, 0, gh), np.clip(cx - ww / two, 0, gw),
        np.clip(cy + hh / two, 0, gh), np.clip(cx + ww / two, 0, gw),
    ], axis=1).astype(np.float32)
    boxes = boxes * np.float32(stride) / np.asarray([true[0], true[1], true[0], true[1]], np.float32)
    boxes = np.clip(boxes, 0.0, 1.0).astype(np.float32)
    cat = _class_ids(class_ids, cs)
    if peaks == "nms":
        keep = greedy_nms(boxes, scores, nms_iou, top_k)
        boxes, scores, cat = boxes[keep], scores[keep], cat[keep]
    return Detections(boxes, scores, cat)


@register_decoder("ltrb_centernet", heads=("heatmap", "wh"))
def decode_ltrb_centernet(
    heads: Mapping[str, np.ndarray],
    *,
    class_ids: Sequence[int],
    stride: int = 4,
    input_size: Sequence[int] = (512, 512),
    top_k: int = 100,
) -> Detections:
    """mb3-centernet heads: sigmoid heatmap and (left, top, right, bottom) distances in input pixels.

    Box = (stride*x - l, stride*y - t, stride*x + r, stride*y + b): no half-cell shift, no offset
    head, no clipping (the model card's decoding, which reproduces the original graph exactly).
    """
    hm = _batch1(heads, "heatmap", 3)
    wh = _batch1(heads, "wh", 3)
    scores, ys, xs, cs = top_k_cells(hm, top_k, peaks_only=True)
    ltrb = wh[ys, xs].astype(np.float32)
    py, px = (ys * stride).astype(np.float32), (xs * stride).astype(np.float32)
    in_h, in_w = input_size
    boxes = np.stack([
        (py - ltrb[:, 1]) / in_h, (px - ltrb[:, 0]) / in_w,
        (py + ltrb[:, 3]) / in_h, (px + ltrb[:, 2]) / in_w,
    ], axis=1).astype(np.float32)
    return Detections(boxes, scores.astype(np.float32), _class_ids(class_ids, cs))


@register_decoder("postprocessed",
                  heads=("detection_boxes", "detection_scores", "detection_classes", "num_detections"))
def decode_postprocessed(heads: Mapping[str, np.ndarray], *, top_k: int = 100) -> Detections:
    """TF Hub / TF OD API detection dict: boxes already normalised, classes already label-map ids."""
    boxes = _batch1(heads, "detection_boxes", 2).astype(np.float32)
    scores = _batch1(heads, "detection_scores", 1).astype(np.float32)
    classes = _batch1(heads, "detection_classes", 1)
    n = int(np.asarray(heads["num_detections"]).reshape(-1)[0])
    n = min(n, top_k, scores.shape[0])
    return Detections(boxes[:n], scores[:n], np.rint(classes[:n]).astype(np.int64))
