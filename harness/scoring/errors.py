"""What kind of detection error costs the AP: TIDE's decomposition (Bolya et al., ECCV 2020), per image weightable.

Each false positive at IoU 0.5 is given one cause, in TIDE's order: `loc` (right class, best IoU with a box
of its class in [0.1, 0.5)), `cls` (IoU >= 0.5 with a box of another class), `dupe` (IoU >= 0.5 with a box
of its class that a higher-scoring detection already took), `bkg` (IoU <= 0.1 with every box), `both`
(anything else: wrong class and poorly placed). A ground-truth box that nothing detects and that no
`cls`/`loc` error points at is `miss`. Each error's cost is the AP50 gained when only that error is fixed:
a `loc`/`cls` detection becomes the true positive of the box it points at (the highest-scoring one per
box; the others, and those pointing at a box already detected, are removed), `dupe`/`bkg`/`both`
detections are removed, missed boxes leave the ground truth. `fp` (every false positive scored below every
true positive) and `fn` (every undetected box removed) are TIDE's false-positive / false-negative split.

Why the harness's own code and not a library: the paired interval of a quantized model's change in each
error needs the decomposition re-scored on a thousand resamples of the images, i.e. with a weight per
image, which neither `tidecv` nor `hotcoco` offers; and a board with only numpy must be able to write
the record. The assignment is computed once (a loop over images) and every fix is a weighted
re-accumulation in numpy (`weighted_ap50`), the same role `harness.scoring.accumulate` plays for the 12
COCO stats. AP is COCO's: 101 recall points, mean over the classes with ground truth, crowd boxes
ignored (a detection covered >= 50% by a crowd box of its class neither counts nor is an error),
at most 100 detections per image (TIDE's per-image cap; CenterNet emits 100).

One fix per box: when several `cls`/`loc` errors point at the same undetected box, only the highest-scoring
one becomes its true positive when its type is fixed, the others are removed (`shared_fix`, as tidecv's
BestGTMatch and hotcoco do: fixing `loc` alone then leaves a box whose best claimant is a `cls` error
undetected, which is what "one detection per box" asks).

Against tidecv 1.0.1 and hotcoco 1.3.0 (tests/test_errors_tidecv.py, mb3-centernet-f32 over the mirror's
159 images, AP points): this module gives cls 3.82, loc 8.64, both 0.77, dupe 0.90, bkg 4.55, miss 5.01;
hotcoco 3.81, 8.65, 0.77, 0.90, 4.54, 5.02; tidecv 3.78, 9.20, 0.77, 0.90, 4.55, 4.81. tidecv's larger
`loc` and smaller `miss` are one tidecv bug: a detection it has just ignored for lying inside a crowd
region of its class (quantify.py sets `pred['used'] = None`) still enters its error detection, because
the test there is `used == False or used == None`. Such a detection is no false positive (it is in no AP
list), yet it is given a `loc` or `cls` error whose fix turns it into the true positive of a real box
near the crowd, and that box is then no longer counted as missed. The mirror's 16 crowd boxes (people
in stands and streets) draw many such detections. `crowd_errors=True` reproduces the bug, and
`tidecv_compat=True` (the bug plus tidecv's `<=` / `>` at the thresholds) reproduces tidecv's six
numbers to 0.01; hotcoco handles crowds as pycocotools does, as here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

ERROR_TYPES = ("cls", "loc", "both", "dupe", "bkg", "miss")
SPECIAL_TYPES = ("fp", "fn")
ERROR_NAMES = {"cls": "classification", "loc": "localisation", "both": "class and box", "dupe": "duplicate",
               "bkg": "background", "miss": "missed", "fp": "false positives", "fn": "false negatives"}
SIZES = ("all", "small", "medium", "large")
_AREA_RANGES = ((0.0, 1e10), (0.0, 32.0**2), (32.0**2, 96.0**2), (96.0**2, 1e10))  # pycocotools' areaRng
_REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)  # as pycocotools
_EPS = np.spacing(1)
# Detection kinds (codes in `Assignment.det_kind`).
TP, CLS, LOC, BOTH, DUPE, BKG, IGNORED = 0, 1, 2, 3, 4, 5, -1
_KIND = {"cls": CLS, "loc": LOC, "both": BOTH, "dupe": DUPE, "bkg": BKG}


@dataclass(frozen=True)
class Assignment:
    """One results list's matching at IoU 0.5 with a cause for every error. Image indices refer to
    `image_ids`, class indices to `cat_ids`; `*_ref` index the results list / the annotations."""

    image_ids: tuple[int, ...]
    cat_ids: tuple[int, ...]
    det_img: np.ndarray
    det_cat: np.ndarray
    det_score: np.ndarray
    det_area: np.ndarray
    det_kind: np.ndarray  # TP, CLS, ... or IGNORED
    det_gt: np.ndarray  # ground-truth row it matched (TP) or points at (CLS, LOC, DUPE); -1 for none
    det_fixes: np.ndarray  # a CLS/LOC detection that becomes a true positive when its type is fixed
    det_ref: np.ndarray
    det_ignored: np.ndarray  # covered by a crowd box of its class (counts nowhere unless `crowd_errors`)
    gt_img: np.ndarray
    gt_cat: np.ndarray
    gt_area: np.ndarray
    gt_matched: np.ndarray
    gt_missed: np.ndarray
    gt_ref: np.ndarray

    @property
    def n_images(self) -> int:
        return len(self.image_ids)


def _iou(d: np.ndarray, g: np.ndarray, crowd: bool = False) -> np.ndarray:
    """[D, G] IoU of xywh boxes; with `crowd`, intersection over the detection's area (pycocotools' iscrowd)."""
    if d.size == 0 or g.size == 0:
        return np.zeros((len(d), len(g)))
    dx2, dy2, gx2, gy2 = d[:, 0] + d[:, 2], d[:, 1] + d[:, 3], g[:, 0] + g[:, 2], g[:, 1] + g[:, 3]
    iw = np.minimum(dx2[:, None], gx2[None]) - np.maximum(d[:, None, 0], g[None, :, 0])
    ih = np.minimum(dy2[:, None], gy2[None]) - np.maximum(d[:, None, 1], g[None, :, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    da, ga = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = da[:, None] if crowd else da[:, None] + ga[None] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def assign(gt, results: Sequence[dict], image_ids: Sequence[int] | None = None, *, pos: float = 0.5,
           bg: float = 0.1, max_dets: int = 100, tidecv_compat: bool = False,
           crowd_errors: bool | None = None, shared_fix: bool | None = None) -> Assignment:
    """Match `results` to `gt` (a CocoGroundTruth) image by image and give each error its cause.

    `tidecv_compat` reproduces tidecv 1.0.1 (module doc); `crowd_errors` switches its crowd bug alone,
    `shared_fix=False` lets each error type pick its own claimant per box.
    """
    crowd_errors = tidecv_compat if crowd_errors is None else crowd_errors
    shared_fix = True if shared_fix is None else shared_fix
    ids = sorted({i.id for i in gt.images} if image_ids is None else set(image_ids))
    img_at = {i: n for n, i in enumerate(ids)}
    cat_ids = tuple(sorted(gt.categories))
    cat_at = {c: k for k, c in enumerate(cat_ids)}
    gts: dict[int, list[tuple[int, dict]]] = {i: [] for i in ids}
    for n, a in enumerate(gt.dataset["annotations"]):
        if a["image_id"] in gts and a["category_id"] in cat_at:
            gts[a["image_id"]].append((n, a))
    dts: dict[int, list[tuple[int, dict]]] = {i: [] for i in ids}
    for n, r in enumerate(results):
        if r["image_id"] in dts and r["category_id"] in cat_at:
            dts[r["image_id"]].append((n, r))
    d_cols: list[list] = [[] for _ in range(9)]  # img, cat, score, area, kind, gt, fixes, ref, ignored
    g_cols: list[list] = [[] for _ in range(6)]  # img, cat, area, matched, missed, ref
    g_rows = 0
    for img in ids:
        g_rows += _assign_image(img_at[img], gts[img], dts[img], cat_at, pos, bg, max_dets, tidecv_compat,
                                crowd_errors, shared_fix, d_cols, g_cols, g_rows)
    d = [np.concatenate(c) if c else np.zeros(0) for c in d_cols]
    g = [np.concatenate(c) if c else np.zeros(0) for c in g_cols]
    ints, floats = np.int64, np.float64
    return Assignment(tuple(ids), cat_ids, d[0].astype(ints), d[1].astype(ints), d[2].astype(floats),
                      d[3].astype(floats), d[4].astype(ints), d[5].astype(ints), d[6].astype(bool),
                      d[7].astype(ints), d[8].astype(bool), g[0].astype(ints), g[1].astype(ints), g[2].astype(floats),
                      g[3].astype(bool), g[4].astype(bool), g[5].astype(ints))


def _assign_image(img: int, gts: list[tuple[int, dict]], dts: list[tuple[int, dict]], cat_at: dict[int, int],
                  pos: float, bg: float, max_dets: int, compat: bool, crowd_errors: bool, shared_fix: bool,
                  d_cols: list[list], g_cols: list[list], g_offset: int) -> int:
    """One image's rows appended to the columns (arrays, concatenated by `assign`); returns its box count."""
    real = [(n, a) for n, a in gts if not a.get("iscrowd")]
    crowd = [(n, a) for n, a in gts if a.get("iscrowd")]
    order = sorted(range(len(dts)), key=lambda i: -dts[i][1]["score"])[:max_dets]  # stable: ties keep file order
    dts = [dts[i] for i in order]
    dbox = np.asarray([r["bbox"] for _, r in dts], np.float64).reshape(-1, 4)
    dcat = np.asarray([cat_at[r["category_id"]] for _, r in dts], np.int64)
    gbox = np.asarray([a["bbox"] for _, a in real], np.float64).reshape(-1, 4)
    gcat = np.asarray([cat_at[a["category_id"]] for _, a in real], np.int64)
    iou = _iou(dbox, gbox)
    same = dcat[:, None] == gcat[None, :]
    iou_same = iou * same
    D, G = len(dts), len(real)
    used = np.zeros(G, bool)
    kind = np.full(D, -2, np.int64)
    target = np.full(D, -1, np.int64)
    # Greedy by score: the unused box of its class with the highest IoU, if >= pos. A detection with no such
    # box at all cannot match whatever is used, so only those with one are visited (most are not).
    for i in (np.flatnonzero(iou_same.max(axis=1) >= pos).tolist() if G else []):
        row = np.where(used, 0.0, iou_same[i])
        j = int(np.argmax(row))
        if row[j] >= pos:
            used[j], kind[i], target[i] = True, TP, j
    if crowd and D:
        cbox = np.asarray([a["bbox"] for _, a in crowd], np.float64).reshape(-1, 4)
        ccat = np.asarray([cat_at[a["category_id"]] for _, a in crowd], np.int64)
        cover = _iou(dbox, cbox, crowd=True) * (dcat[:, None] == ccat[None, :])
        covered = (cover > pos).any(axis=1) if compat else (cover >= pos).any(axis=1)
        ignored = covered & (kind != TP)
    else:
        ignored = np.zeros(D, bool)
    if not crowd_errors:
        kind[ignored & (kind != TP)] = IGNORED
    kind, target = _error_kinds(iou, same, used, kind, target, pos, bg, compat)
    # One fix per box: the highest-scoring claimant (dets are in score order) of a box nothing detected.
    fixes = np.zeros(D, bool)
    claimed: dict[tuple[int, int], int] = {}
    for i in np.flatnonzero(((kind == CLS) | (kind == LOC)) & (target >= 0)).tolist():
        if not used[target[i]]:
            key = (-1 if shared_fix else int(kind[i]), int(target[i]))
            if key not in claimed:
                claimed[key] = int(i)
                fixes[i] = True
    usable = np.zeros(G, bool)
    usable[[j for _, j in claimed]] = True
    # tidecv: a crowd-covered error is in no AP list, yet its fix still adds a true positive.
    for col, v in zip(d_cols, (np.full(D, img, np.int64), dcat, np.asarray([r["score"] for _, r in dts], np.float64),
                               dbox[:, 2] * dbox[:, 3], kind, np.where(target >= 0, g_offset + target, -1), fixes,
                               np.asarray([n for n, _ in dts], np.int64), ignored), strict=True):
        col.append(v)
    areas = [float(a.get("area", a["bbox"][2] * a["bbox"][3])) for _, a in real]
    for col, v in zip(g_cols, (np.full(G, img, np.int64), gcat, np.asarray(areas, np.float64), used,
                               ~used & ~usable, np.asarray([n for n, _ in real], np.int64)), strict=True):
        col.append(v)
    return G


def _error_kinds(iou: np.ndarray, same: np.ndarray, used: np.ndarray, kind: np.ndarray, target: np.ndarray,
                 pos: float, bg: float, compat: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every detection not yet a true positive or ignored, given its TIDE error type in one pass over the
    image: localisation (its class's best box at bg <= IoU < pos), else classification (another class's box at
    IoU >= pos), else duplicate (a matched box of its class at IoU >= pos), else both (any box above bg), else
    background; with the box it points at for the first three."""
    open_ = kind == -2
    kind = np.where(open_, BKG, kind)
    D, G = iou.shape
    if G == 0 or not open_.any():
        return kind, target
    rows = np.arange(D)
    iou_same = iou * same
    iou_other = iou * ~same
    iou_used = iou_same * used[None, :]
    j_same = np.argmax(iou_same, axis=1)
    v_same = iou_same[rows, j_same]
    loc = (bg <= v_same) & ((v_same <= pos) if compat else (v_same < pos))
    j_other = np.argmax(iou_other, axis=1)
    cls = ~loc & (iou_other[rows, j_other] >= pos)
    j_used = np.argmax(iou_used, axis=1)
    dupe = ~loc & ~cls & (iou_used[rows, j_used] >= pos)
    both = ~loc & ~cls & ~dupe & (iou.max(axis=1) > bg)
    for mask, code, j in ((loc, LOC, j_same), (cls, CLS, j_other), (dupe, DUPE, j_used), (both, BOTH, None)):
        mask = mask & open_
        kind[mask] = code
        if j is not None:
            target[mask] = j[mask]
    return kind, target


@dataclass(frozen=True)
class _Entries:
    """One AP computation's inputs: detections (class, score, true positive, image) and ground-truth rows."""

    cat: np.ndarray
    score: np.ndarray
    tp: np.ndarray
    img: np.ndarray
    g_cat: np.ndarray
    g_img: np.ndarray


def _entries(a: Assignment, fix: str | None, size: int = 0) -> _Entries:
    """The detections and boxes that count with error type `fix` fixed (None: as they are), for one size.

    A size keeps the boxes of that size, the true positives (real or fixed) of those boxes, and the false
    positives whose own area is of that size: pycocotools' rule, applied to the one all-sizes matching.
    """
    lo, hi = _AREA_RANGES[size]
    g_in = (a.gt_area >= lo) & (a.gt_area <= hi)
    d_in = (a.det_area >= lo) & (a.det_area <= hi)
    target_in = np.where(a.det_gt >= 0, g_in[np.maximum(a.det_gt, 0)], False)
    kind, cat, score = a.det_kind, a.det_cat.copy(), a.det_score.copy()
    counted = ~a.det_ignored & (kind != IGNORED)
    tp = kind == TP
    keep = counted & np.where(tp, target_in, d_in)
    if fix in _KIND:
        mine = kind == _KIND[fix]
        keep &= ~mine
        if fix in ("cls", "loc"):  # the chosen claimant becomes the true positive of its box, in the box's class
            fixed = mine & a.det_fixes & target_in
            keep |= fixed
            tp = tp | fixed
            cat[fixed] = a.gt_cat[a.det_gt[fixed]]
    elif fix == "fp":
        score = np.where(tp, score, -1.0)  # below every true positive
    g_keep = g_in.copy()
    if fix == "miss":
        g_keep &= ~a.gt_missed
    elif fix == "fn":
        g_keep &= a.gt_matched
    return _Entries(cat[keep], score[keep], tp[keep], a.det_img[keep], a.gt_cat[g_keep], a.gt_img[g_keep])


def weighted_ap50(e: _Entries, n_cats: int, weights: np.ndarray, present: np.ndarray) -> np.ndarray:
    """COCO AP at IoU 0.5 [B] with image i counted weights[b, i] times, over the classes `present` [B, K].

    Per class: detections by score (ties in input order), weighted cumulative true / false positives,
    precision at each of the 101 recall thresholds = the best precision at that recall or beyond. Only
    true positives can hold that best (as in harness.scoring.accumulate); one with recall r raises every
    threshold <= r, so the per-threshold maxima are a reduceat over runs of equal (resample, class,
    threshold), then a suffix max. A present class with no boxes left (all
    its boxes removed by a fix) has AP 0.
    """
    w = np.asarray(weights, np.float64)
    B, K, R = w.shape[0], n_cats, _REC_THRS.size
    npos = np.zeros((B, K))
    for b in range(B):
        npos[b] = np.bincount(e.g_cat, weights=w[b, e.g_img], minlength=K)
    order = np.lexsort((-e.score, e.cat))
    cat, img, tp = e.cat[order], e.img[order], e.tp[order]
    ap = np.zeros((B, K))
    hit = np.flatnonzero(tp)  # only a true positive can set the envelope: a false positive lowers precision
    if hit.size:
        starts = np.flatnonzero(np.concatenate(([True], cat[1:] != cat[:-1])))
        seg_start = np.repeat(starts, np.diff(np.append(starts, cat.size)))[hit]
        call = np.cumsum(w[:, img], axis=1)
        n_all = call[:, hit] - np.where(seg_start > 0, call[:, np.maximum(seg_start - 1, 0)], 0.0)
        wt = w[:, img[hit]]
        ctp = np.cumsum(wt, axis=1)
        first_tp = np.searchsorted(hit, seg_start)  # the segment's first true positive, in `hit` order
        n_tp = ctp - np.where(first_tp > 0, ctp[:, np.maximum(first_tp - 1, 0)], 0.0)
        hcat = cat[hit]
        with np.errstate(divide="ignore", invalid="ignore"):
            rc = n_tp / npos[:, hcat]
            pr = n_tp / (n_all + _EPS)
        ok = np.isfinite(rc)
        bucket = np.clip(np.searchsorted(_REC_THRS, np.where(ok, rc, -1.0), side="right") - 1, 0, R - 1)
        key = ((np.arange(B)[:, None] * K + hcat[None]) * R + bucket).ravel()
        val = np.where(ok, pr, 0.0).ravel()
        first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))
        m = np.zeros(B * K * R)
        m[key[first]] = np.maximum.reduceat(val, first)
        m = np.maximum.accumulate(m.reshape(B, K, R)[..., ::-1], axis=2)[..., ::-1]
        ap = m.mean(axis=2)
    ap = np.where(npos > 0, ap, 0.0)
    with np.errstate(invalid="ignore"):
        return np.where(present, ap, 0.0).sum(axis=1) / present.sum(axis=1)


def _variants(a: Assignment, weights: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """AP50 [B] as it is ('base') and with each error type fixed, for one size."""
    base = _entries(a, None, size)
    K = len(a.cat_ids)
    present = np.stack([np.bincount(base.g_cat, weights=row[base.g_img], minlength=K) > 0 for row in weights])
    return {v: weighted_ap50(base if v == "base" else _entries(a, v, size), K, weights, present)
            for v in ("base", *ERROR_TYPES, *SPECIAL_TYPES)}


def _counts(a: Assignment, size: int) -> dict[str, int]:
    lo, hi = _AREA_RANGES[size]
    d_in = (a.det_area >= lo) & (a.det_area <= hi) & ~a.det_ignored
    g_in = (a.gt_area >= lo) & (a.gt_area <= hi)
    out = {t: int(np.sum(d_in & (a.det_kind == _KIND[t]))) for t in _KIND}
    out["miss"] = int(np.sum(g_in & a.gt_missed))
    return {t: out[t] for t in ERROR_TYPES}


def decompose(a: Assignment) -> dict:
    """The record block: per size, AP50 and each error's ΔAP50 (fractions, like the COCO stats; negative
    where 101-point binning makes a fix cost a hair) and how many errors of each type there are."""
    w = np.ones((1, a.n_images))
    out: dict = {"method": "tide", "pos_iou": 0.5, "bg_iou": 0.1, "images": a.n_images, "sizes": {}}
    for s, name in enumerate(SIZES):
        v = {k: float(x[0]) for k, x in _variants(a, w, s).items()}
        if not np.isfinite(v["base"]):
            continue
        out["sizes"][name] = {"AP50": round(v["base"], 6),
                              "errors": {t: round(v[t] - v["base"], 6) for t in ERROR_TYPES},
                              "special": {t: round(v[t] - v["base"], 6) for t in SPECIAL_TYPES},
                              "counts": _counts(a, s)}
    return out


def error_replicates(a: Assignment, weights: np.ndarray, size: int = 0, batch: int = 50) -> dict[str, np.ndarray]:
    """AP50 ('base') and each error's ΔAP50 [B] under resample weights [B, images], in batches (memory ~
    batch x detections)."""
    parts = [_variants(a, weights[i:i + batch], size) for i in range(0, len(weights), batch)]
    v = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return {"base": v["base"], **{t: v[t] - v["base"] for t in (*ERROR_TYPES, *SPECIAL_TYPES)}}


def error_block(gt, results: Sequence[dict], image_ids: Sequence[int]) -> dict | None:
    """`results.errors` of an eval / score record: the decomposition on the scored images (None: no images)."""
    if not image_ids:
        return None
    return decompose(assign(gt, results, image_ids))
