"""A pair of results' errors side by side, and where they sit: the paired change in each TIDE error type
(harness.scoring.errors) with a bootstrap interval, the class confusion, and each image's share of an error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.scoring.errors import (
    _KIND,
    CLS,
    ERROR_TYPES,
    IGNORED,
    SIZES,
    SPECIAL_TYPES,
    TP,
    Assignment,
    error_replicates,
)


def paired_errors(a: Assignment, b: Assignment, resamples: int = 1000, level: float = 0.95, seed: int = 0,
                  sizes: Sequence[str] = SIZES) -> dict:
    """Change (b - a) in each error's ΔAP50 with a paired bootstrap interval over the same images.

    The resamples are `harness.scoring.bootstrap.resample_weights`'s, the interval its basic one, as for
    the paired ΔAP of the 12 stats: one draw of images scores both models, so shared difficulty cancels.
    """
    from harness.errors import HarnessError
    from harness.scoring.bootstrap import _bounds, resample_weights

    if a.image_ids != b.image_ids or a.cat_ids != b.cat_ids:
        raise HarnessError("paired error changes need both results on the same images and categories")
    w = resample_weights(a.n_images, resamples, seed)
    one = np.ones((1, a.n_images))
    out: dict = {"level": level, "method": "basic", "resamples": resamples, "seed": seed, "images": a.n_images,
                 "sizes": {}}
    for name in sizes:
        s = SIZES.index(name)
        pa, pb = error_replicates(a, one, s), error_replicates(b, one, s)
        if not all(np.isfinite(x[0]) for x in (*pa.values(), *pb.values())):
            continue
        ra, rb = error_replicates(a, w, s), error_replicates(b, w, s)
        block: dict = {"AP50": {"a": round(float(pa["base"][0]), 6), "b": round(float(pb["base"][0]), 6)}}
        for t in (*ERROR_TYPES, *SPECIAL_TYPES):
            point = float(pb[t][0] - pa[t][0])
            lo, hi = _bounds(point, rb[t] - ra[t], level, "basic", None)
            block[t] = {"a": round(float(pa[t][0]), 6), "b": round(float(pb[t][0]), 6), "delta": round(point, 6),
                        "lo": None if np.isnan(lo) else round(lo, 6), "hi": None if np.isnan(hi) else round(hi, 6)}
        out["sizes"][name] = block
    return out


def confusion(a: Assignment, min_score: float = 0.3, names: dict[int, str] | None = None) -> dict:
    """Class confusion at IoU 0.5 of the detections scoring >= `min_score`: [ground-truth class or
    'background' (-1), predicted class or 'missed' (-1), count] for every non-zero cell (class indices into
    `category_ids` / `labels`)."""
    labels = [(names or {}).get(c, str(c)) for c in a.cat_ids]
    keep = (a.det_score >= min_score) & ~a.det_ignored & (a.det_kind != IGNORED)
    cells: dict[tuple[int, int], int] = {}
    for k, c, g in zip(a.det_kind[keep], a.det_cat[keep], a.det_gt[keep], strict=True):
        row = int(a.gt_cat[g]) if k in (TP, CLS) else -1
        cells[(row, int(c))] = cells.get((row, int(c)), 0) + 1
    hit = np.zeros(a.gt_cat.size, bool)
    tp_rows = a.det_gt[keep & (a.det_kind == TP)]
    hit[tp_rows] = True
    for g in np.flatnonzero(~hit):
        key = (int(a.gt_cat[g]), -1)
        cells[key] = cells.get(key, 0) + 1
    return {"min_score": min_score, "iou": 0.5, "category_ids": [int(c) for c in a.cat_ids],
            "cells": [[r, p, n] for (r, p), n in sorted(cells.items())], "labels": labels}


def per_image_errors(a: Assignment) -> dict[str, np.ndarray]:
    """Per error type, [images] how much of it each image holds: the summed scores of its error detections
    (a confident error costs more AP than a faint one), and for `miss` the count of missed boxes."""
    out = {}
    for t, code in _KIND.items():
        sel = (a.det_kind == code) & ~a.det_ignored
        out[t] = np.bincount(a.det_img[sel], weights=a.det_score[sel], minlength=a.n_images)
    out["miss"] = np.bincount(a.gt_img[a.gt_missed], minlength=a.n_images).astype(np.float64)
    return out
