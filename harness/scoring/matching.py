"""pycocotools' per-image matching, run once and kept as arrays (`Matches`) for the bootstrap to re-accumulate.

pycocotools' evaluate() calls evaluateImg() for every (category, area range, image): 80 x 4 x 159 calls
on the mirror, each a Python loop over IoU thresholds x detections x ground truth. Most of that work has
a known answer. A detection with no ground truth of its class in its image matches nothing and is
ignored exactly where its area is outside the range; a detection whose IoU with every ground-truth box
is below the lowest threshold matches nothing either and changes no ground truth's state. So the loop
below is evaluateImg's, statement for statement, run only over the detections that can match; the
rest are filled in by numpy. The arrays are identical to flattening evaluateImg's output (the tests
compare with pycocotools' own stats, bit for bit).

At full scale (5,000 images, 500k detections) that loop still takes tens of seconds. ultrafast-pycocotools
runs the same matching in compiled code and hands back each detection's verdict per (IoU threshold, area
range) as arrays; where it is installed `match_once` builds the same `Matches` from those (tests assert
every array equal to the loop's), and the loop remains for a host without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.scoring.accumulate import AREAS, IOU_THRS, Matches
from harness.scoring.cocoapi import cocoeval


def match_once(gt, results: list[dict], image_ids: Sequence[int] | None = None, *, engine: str = "auto") -> Matches:
    """pycocotools' evaluate() (bbox, default parameters) once, its per-image matches as `Matches`.

    `gt` is a harness.scoring.coco.CocoGroundTruth; `results` official results entries. The detections
    are given to pycocotools exactly as the evaluator does (area w*h, iscrowd 0, ids from 1). `engine`
    "auto" reads ultrafast-pycocotools' matching where it is installed, "pycocotools" runs the loop.
    """
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    if engine == "auto" and _ultrafast_fits(gt):
        return _match_ultrafast(gt, results, ids)
    ev = cocoeval(gt, results, "bootstrap intervals")
    p = ev.params
    p.imgIds, p.catIds, p.maxDets = list(np.unique(ids)), list(np.unique(p.catIds)), sorted(p.maxDets)
    ev._prepare()  # evaluate()'s first step: ground truth and detections per (image, category), crowd ignored
    img_ids, cat_ids = [int(i) for i in p.imgIds], [int(c) for c in p.catIds]
    img_at, cat_at = {i: n for n, i in enumerate(img_ids)}, {c: k for k, c in enumerate(cat_ids)}
    area_rng = np.asarray(p.areaRng, np.float64)
    with_gt = sorted(ev._gts)
    pairs = {(cat_at[c], img_at[i]): _evaluate_pair(ev, i, c, area_rng, p.maxDets[-1]) for i, c in with_gt}
    gt_keys = set(with_gt)
    lone = [(img_at[i], cat_at[c], d["score"], d["area"]) for (i, c), dts in ev._dts.items() if (i, c) not in gt_keys
            for d in dts]
    names = {int(c["id"]): str(c["name"]) for c in gt.dataset["categories"]}
    return _flatten(pairs, np.asarray(lone, np.float64).reshape(-1, 4), img_ids, cat_ids, names, area_rng,
                    p.maxDets[-1])


def _evaluate_pair(ev, img: int, cat: int, area_rng: np.ndarray, max_det: int) -> list[tuple]:
    """evaluateImg() of one (image, category) with ground truth, for each area range:
    (scores [D], ground truth that counts, matched and not ignored [T, D], not ignored [T, D])."""
    gt, dt = ev._gts[img, cat], ev._dts[img, cat]
    dtind = np.argsort([-d["score"] for d in dt], kind="mergesort")
    dt = [dt[i] for i in dtind[0:max_det]]
    T, G, D = len(IOU_THRS), len(gt), len(dt)
    scores = np.asarray([d["score"] for d in dt], np.float64)
    ious_all = np.asarray(ev.computeIoU(img, cat)) if D else np.zeros((0, G))
    # Only a detection with IoU >= the lowest threshold against some box can match at any threshold.
    can_match = np.flatnonzero((ious_all >= min(IOU_THRS[0], 1 - 1e-10)).any(axis=1)).tolist() if D and G else []
    d_area = np.asarray([d["area"] for d in dt], np.float64)
    out = []
    for lo, hi in area_rng:
        g_ig = np.asarray([1 if g["ignore"] or (g["area"] < lo or g["area"] > hi) else 0 for g in gt])
        gtind = np.argsort(g_ig, kind="mergesort")
        gt_ig = g_ig[gtind].tolist()
        iscrowd = [int(gt[i]["iscrowd"]) for i in gtind]
        ious = ious_all[:, gtind].tolist()  # Python scalars: the loop below indexes them one at a time
        best = [max(row) if row else 0.0 for row in ious]
        gtm = [[0] * G for _ in range(T)]
        dtm = np.zeros((T, D))
        dt_ig = np.zeros((T, D))
        for tind, t in enumerate(IOU_THRS.tolist()):
            thr = min([t, 1 - 1e-10])
            taken = gtm[tind]
            for dind in can_match:
                if best[dind] < thr:  # no box reaches this threshold: m stays -1
                    continue
                row, iou, m = ious[dind], thr, -1
                for gind in range(G):
                    if taken[gind] > 0 and not iscrowd[gind]:
                        continue
                    if m > -1 and gt_ig[m] == 0 and gt_ig[gind] == 1:
                        break
                    if row[gind] < iou:
                        continue
                    iou = row[gind]
                    m = gind
                if m == -1:
                    continue
                dt_ig[tind, dind] = gt_ig[m]
                dtm[tind, dind] = gt[gtind[m]]["id"]
                taken[m] = dt[dind]["id"]
        outside = (d_area < lo) | (d_area > hi)
        ignored = (dt_ig != 0) | ((dtm == 0) & outside[None])
        out.append((scores, gt_ig.count(0), (dtm != 0) & ~ignored, ~ignored))
    return out


def _flatten(pairs: dict, lone: np.ndarray, img_ids: list[int], cat_ids: list[int], names: dict[int, str],
             area_rng: np.ndarray, max_det: int) -> Matches:
    """`Matches` from the pairs with ground truth ({(category, image): `_evaluate_pair`}) and the detections
    of pairs without (rows of image, category, score, area, in pycocotools' listing order)."""
    A, T = len(AREAS), len(IOU_THRS)
    cats, imgs, ranks, scores, tps, valids = [], [], [], [], [], []
    g_cat, g_area, g_img, g_n = [], [], [], []
    for (k, i), per_area in sorted(pairs.items()):
        for a, (_, n, _, _) in enumerate(per_area):
            if n:
                g_cat.append(k)
                g_area.append(a)
                g_img.append(i)
                g_n.append(n)
        d = per_area[0][0].size
        if d == 0:
            continue
        cats.append(np.full(d, k))
        imgs.append(np.full(d, i))
        ranks.append(np.arange(d))
        scores.append(per_area[0][0])
        tps.append(np.stack([e[2] for e in per_area]))
        valids.append(np.stack([e[3] for e in per_area]))
    if lone.size:
        # evaluateImg's steps for a pair without ground truth: a stable sort by -score, the first maxDet
        # kept, nothing matched, ignored at every threshold where the area is outside the range.
        img, cat, score, area = lone[:, 0].astype(np.int64), lone[:, 1].astype(np.int64), lone[:, 2], lone[:, 3]
        order = np.lexsort((np.arange(img.size), -score, img, cat))
        img, cat, score, area = img[order], cat[order], score[order], area[order]
        start = np.flatnonzero(np.concatenate(([True], (img[1:] != img[:-1]) | (cat[1:] != cat[:-1]))))
        rank = np.arange(img.size) - np.repeat(start, np.diff(np.append(start, img.size)))
        keep = rank < max_det
        img, cat, score, area, rank = img[keep], cat[keep], score[keep], area[keep], rank[keep]
        inside = (area[None] >= area_rng[:, :1]) & (area[None] <= area_rng[:, 1:])  # [A, n]
        cats.append(cat)
        imgs.append(img)
        ranks.append(rank)
        scores.append(score)
        tps.append(np.zeros((A, T, img.size), bool))
        valids.append(np.repeat(inside[:, None], T, axis=1))
    if cats:
        cat, img, rank, score = (np.concatenate(x) for x in (cats, imgs, ranks, scores))
        tp, valid = np.concatenate(tps, axis=2), np.concatenate(valids, axis=2)
    else:
        cat = img = rank = np.zeros(0, np.int64)
        score = np.zeros(0)
        tp = valid = np.zeros((A, T, 0), bool)
    # accumulate()'s order: per category, a stable sort by -score of the detections listed image by image.
    order = np.lexsort((rank, img, -score, cat))
    return Matches(tuple(img_ids), tuple(cat_ids), tuple(names.get(c, str(c)) for c in cat_ids),
                   cat[order], img[order], rank[order], score[order], tp[:, :, order], valid[:, :, order],
                   np.asarray(g_cat, np.int64), np.asarray(g_area, np.int64), np.asarray(g_img, np.int64),
                   np.asarray(g_n, np.float64))


def _ultrafast_fits(gt) -> bool:
    """ultrafast-pycocotools installed, and no ground-truth id it would confuse with "unmatched".

    pycocotools records a match as the ground truth's id and treats 0 as none; ultrafast reports -1 for none.
    """
    from importlib.util import find_spec

    return find_spec("ultrafast_pycocotools") is not None and all(a["id"] > 0 for a in gt.dataset["annotations"])


def _match_ultrafast(gt, results: list[dict], ids: list[int]) -> Matches:
    """`Matches` from ultrafast-pycocotools' per-detection outcomes (the same matching, compiled)."""
    from ultrafast_pycocotools import _ufcoco

    from harness.scoring.evaluator import ultrafast_cocoeval

    ev = ultrafast_cocoeval(gt.dataset, results, ids)
    p = ev.params
    img_ids, cat_ids = [int(i) for i in p.imgIds], [int(c) for c in p.catIds]
    A, T = len(AREAS), len(IOU_THRS)
    g_rows = []
    for a, label in enumerate(p.areaRngLbl):
        dets, gts = ev.per_instance(iou_thr=float(p.iouThrs[0]), area=label, max_dets=p.maxDets[-1])
        g_rows.append((a, gts["image_id"][~gts["ignore"]], gts["category_id"][~gts["ignore"]]))
        if a == 0:  # the kept detections (maxDets per image and class), listed as `outcomes` lists them
            dt_id, d_img, d_cat, d_score = dets["dt_id"], dets["image_id"], dets["category_id"], dets["score"]
            tp, valid = np.zeros((A, T, dt_id.size), bool), np.zeros((A, T, dt_id.size), bool)
        out = ev._engine.outcomes(a, p.maxDets[-1])  # [D, T] one of ignored / true / false positive
        if not (np.array_equal(out["image_id"], d_img) and np.array_equal(out["score"], d_score)):
            raise AssertionError("ultrafast-pycocotools listed the detections differently across area ranges")
        valid[a] = (out["outcome"] != _ufcoco.OUTCOME_IGNORED).T
        tp[a] = (out["outcome"] == _ufcoco.OUTCOME_TRUE_POSITIVE).T
    assert tp is not None and valid is not None
    img_at = np.searchsorted(img_ids, d_img)
    cat_at = np.searchsorted(cat_ids, d_cat)
    # Rank in the image and class: pycocotools' stable sort by -score over the detections in id order.
    order = np.lexsort((dt_id, -d_score, cat_at, img_at))
    pair = img_at[order] * len(cat_ids) + cat_at[order]
    start = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1])))
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size) - np.repeat(start, np.diff(np.append(start, order.size)))
    # accumulate()'s order: per category, a stable sort by -score of the detections listed image by image.
    row = np.lexsort((rank, img_at, -d_score, cat_at))
    g_cat, g_area, g_img, g_n = [], [], [], []
    for a, g_i, g_c in g_rows:
        key, n = np.unique(np.searchsorted(cat_ids, g_c) * len(img_ids) + np.searchsorted(img_ids, g_i),
                           return_counts=True)
        g_cat.append(key // len(img_ids))
        g_img.append(key % len(img_ids))
        g_n.append(n)
        g_area.append(np.full(key.size, a))
    g_order = np.lexsort((np.concatenate(g_area), np.concatenate(g_img), np.concatenate(g_cat)))
    names = {int(c["id"]): str(c["name"]) for c in gt.dataset["categories"]}
    return Matches(tuple(img_ids), tuple(cat_ids), tuple(names.get(c, str(c)) for c in cat_ids),
                   cat_at[row], img_at[row], rank[row], d_score[row], tp[:, :, row], valid[:, :, row],
                   np.concatenate(g_cat)[g_order], np.concatenate(g_area)[g_order],
                   np.concatenate(g_img)[g_order], np.concatenate(g_n).astype(np.float64)[g_order])
