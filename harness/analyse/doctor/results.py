"""Why is this results file's mAP low? Named causes, each checked by fixing it and scoring again.

A results file with a convention wrong (category ids shifted, boxes as corners or normalised, x and y
swapped, a score threshold, more than 100 detections an image, images missing, duplicates) scores
badly without any error. The doctor reads the file leniently, measures cheap evidence for every known
cause on a sample (do the categories appear in their image's ground truth? do the boxes overlap a
ground-truth box at IoU >= 0.5?), and scores again, with the faster engine, only the corrections the
evidence suggests: the full file is scored 1 + (number of suggested corrections) times, typically 1-3.
Each finding reports AP before and after its correction (fractions, like the stats), one line of
evidence and the fix; flags that no correction can score (a score threshold) have no `ap_after`.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harness.analyse.doctor.findings import MIN_CHANGE, Finding, sort_findings
from harness.errors import HarnessError
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import score_results

# Evidence gates: a candidate is scored when its evidence rate beats the file's own by both margins.
EVIDENCE_GAIN = 0.05
EVIDENCE_RATIO = 1.5
# Detections per image the evidence looks at (the highest scored), and images sampled at most.
SAMPLE_PER_IMAGE = 10
SAMPLE_IMAGES = 500
# Missing images are reported when more than this fraction of annotated images has no detection
# (a model may legitimately find nothing in an odd image).
MISSING_FRACTION = 0.02
MAX_DETS = 100
SHIFTS = tuple(d for d in range(-10, 11) if d)


# --------------------------------------------------------------------------------------------------
# Reading leniently


def read_results_leniently(path: str | Path) -> tuple[list[dict], list[str]]:
    """A results JSON file as a list of entries, keeping what is usable and saying what was dropped.

    Unlike harness.scoring.coco.load_results it does not refuse unknown category or image ids: those
    are evidence. Only a file that is not JSON, or not a list, is an error.
    """
    from harness.scoring.coco import read_results_json

    path = Path(path)
    data = read_results_json(path)
    if not isinstance(data, list):
        raise HarnessError(f"{path}: a COCO results file is a JSON list of detections")
    return usable_entries(data)


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def usable_entries(data: Sequence[object]) -> tuple[list[dict], list[str]]:
    """Entries with an integer image_id and category_id, four finite bbox numbers and a score."""
    kept, notes = [], []
    bad = 0
    for r in data:
        if (isinstance(r, dict) and isinstance(r.get("image_id"), int) and isinstance(r.get("category_id"), int)
                and isinstance(r.get("bbox"), list) and len(r["bbox"]) == 4 and all(map(_number, r["bbox"]))
                and _number(r.get("score"))):
            kept.append({"image_id": r["image_id"], "category_id": r["category_id"],
                         "bbox": [float(v) for v in r["bbox"]], "score": float(r["score"])})
        else:
            bad += 1
    if bad:
        notes.append(f"{bad} of {len(data)} entries are not bbox detections (need integer image_id and "
                     "category_id, bbox of 4 numbers, score) and were left out")
    return kept, notes


# --------------------------------------------------------------------------------------------------
# Cheap evidence


class _GtIndex:
    """Per image: non-crowd ground-truth boxes (xyxy), their categories, and the image size."""

    def __init__(self, gt: CocoGroundTruth, image_ids: Sequence[int]) -> None:
        ids = set(image_ids)
        boxes: dict[int, list[list[float]]] = defaultdict(list)
        cats: dict[int, set[int]] = defaultdict(set)
        for a in gt.dataset["annotations"]:
            if a["image_id"] in ids and not a.get("iscrowd", 0):
                x, y, w, h = a["bbox"]
                boxes[a["image_id"]].append([x, y, x + w, y + h])
                cats[a["image_id"]].add(a["category_id"])
        self.boxes = {i: np.asarray(b, np.float64) for i, b in boxes.items()}
        self.cats = cats
        self.size = {i.id: (i.width, i.height) for i in gt.images}


def _sample(results: list[dict], image_ids: set[int]) -> list[dict]:
    """The SAMPLE_PER_IMAGE best-scored detections of up to SAMPLE_IMAGES annotated images."""
    per: dict[int, list[dict]] = defaultdict(list)
    for r in results:
        if r["image_id"] in image_ids:
            per[r["image_id"]].append(r)
    out = []
    for i in sorted(per)[:SAMPLE_IMAGES]:
        out.extend(sorted(per[i], key=lambda r: -r["score"])[:SAMPLE_PER_IMAGE])
    return out


def _category_rate(sample: list[dict], index: _GtIndex, remap: Callable[[int], int | None] | None = None) -> float:
    """Fraction of sampled detections whose (remapped) category is annotated in their image."""
    if not sample:
        return 0.0
    hits = 0
    for r in sample:
        c = remap(r["category_id"]) if remap else r["category_id"]
        hits += c is not None and c in index.cats.get(r["image_id"], ())
    return hits / len(sample)


def _box_rate(sample: list[dict], index: _GtIndex, fix: Callable[[list[float], tuple[int, int]], list[float]]
              | None = None) -> float:
    """Fraction of sampled detections whose (corrected) box overlaps a ground-truth box at IoU >= 0.5."""
    if not sample:
        return 0.0
    hits = 0
    for r in sample:
        gtb = index.boxes.get(r["image_id"])
        if gtb is None or not len(gtb):
            continue
        x, y, w, h = fix(r["bbox"], index.size.get(r["image_id"], (1, 1))) if fix else r["bbox"]
        ix = np.clip(np.minimum(x + w, gtb[:, 2]) - np.maximum(x, gtb[:, 0]), 0, None)
        iy = np.clip(np.minimum(y + h, gtb[:, 3]) - np.maximum(y, gtb[:, 1]), 0, None)
        inter = ix * iy
        union = max(w, 0) * max(h, 0) + (gtb[:, 2] - gtb[:, 0]) * (gtb[:, 3] - gtb[:, 1]) - inter
        hits += bool(np.any(inter >= 0.5 * np.where(union > 0, union, np.inf)))
    return hits / len(sample)


def _suggests(rate: float, base: float) -> bool:
    return rate >= base + EVIDENCE_GAIN and rate >= base * EVIDENCE_RATIO


# --------------------------------------------------------------------------------------------------
# The causes and their corrections

BOX_FIXES: dict[str, tuple[Callable[[list[float], tuple[int, int]], list[float]], str, str]] = {
    "box-xyxy": (lambda b, s: [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                 "boxes are [x1, y1, x2, y2] corners",
                 "write bbox as [x, y, width, height]: width = x2 - x1, height = y2 - y1"),
    "box-normalised": (lambda b, s: [b[0] * s[0], b[1] * s[1], b[2] * s[0], b[3] * s[1]],
                       "boxes are normalised to [0, 1]",
                       "multiply x and width by the image width, y and height by its height (absolute pixels)"),
    "box-yx": (lambda b, s: [b[1], b[0], b[3], b[2]],
               "boxes are [y, x, height, width] (TF's ymin, xmin order)",
               "swap x with y and width with height: COCO's bbox is [x, y, width, height]"),
    "box-center": (lambda b, s: [b[0] - b[2] / 2, b[1] - b[3] / 2, b[2], b[3]],
                   "boxes are [centre x, centre y, width, height]",
                   "write the top-left corner: x = cx - width / 2, y = cy - height / 2"),
}


def _category_remaps(cats: list[int]) -> dict[str, tuple[str, Callable[[int], int | None], str, str]]:
    """Candidate category fixes: (finding id, remap, what it assumes, fix), by name."""
    pos = {c: i for i, c in enumerate(cats)}
    known = set(cats)
    out: dict[str, tuple[str, Callable[[int], int | None], str, str]] = {}
    for d in SHIFTS:
        out[f"shift{d:+d}"] = (
            "category-offset", (lambda c, d=d: c - d if c - d in known else None),
            f"category ids are the annotation file's ids {d:+d}",
            f"subtract {d} from every category_id" if d > 0 else f"add {-d} to every category_id")
    out["index0"] = ("category-index", lambda c: cats[c] if 0 <= c < len(cats) else None,
                     f"category ids are class indices 0..{len(cats) - 1}",
                     "map class index i to the annotation file's i-th category id (sorted), e.g. COCO80_IDS[i]")
    out["index1"] = ("category-index", lambda c: cats[c - 1] if 1 <= c <= len(cats) else None,
                     f"category ids are class indices 1..{len(cats)}",
                     "map class index i (1-based) to the (i-1)-th category id (sorted), e.g. COCO80_IDS[i-1]")
    out["slots-as-index"] = (
        "category-index", lambda c: pos[c] + 1 if c in pos else None,
        "a label-map slot (id = index + 1, 90 slots) was read as an index into the sorted category list",
        "for a 90-slot label map the category id is class index + 1; do not map it through the 80-class list")
    return out


def diagnose_results(gt: CocoGroundTruth, results: Sequence[object], image_ids: Sequence[int] | None = None,
                     engine: str = "faster", notes: Sequence[str] = ()) -> list[Finding]:
    """Name what is wrong with a results list, most AP first; each scored cause with AP before/after.

    `results` is the parsed JSON list (read leniently: entries that are not detections are left out
    and reported). `image_ids` default: every image of the annotation file (as `harness score`).
    """
    entries, dropped = usable_entries(list(results))
    notes = [*notes, *dropped]
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    idset = set(ids)
    known_images = {i.id for i in gt.images}
    cats = sorted(gt.categories)
    index = _GtIndex(gt, ids)
    findings: list[Finding] = []

    def score(res: list[dict], on: Sequence[int] = ids) -> float:
        res = [r for r in res if r["image_id"] in known_images and r["category_id"] in gt.categories]
        return float(score_results(gt, res, on, engine).stats["AP"])

    before = score(entries)
    sample = _sample(entries, idset)

    # Categories: remaps whose evidence beats the file's own, best two scored.
    base_cat = _category_rate(sample, index)
    unknown = sum(1 for r in entries if r["category_id"] not in gt.categories)
    rated = sorted(((_category_rate(sample, index, fn), name) for name, (_, fn, _, _) in
                    _category_remaps(cats).items()), reverse=True)
    remaps = _category_remaps(cats)
    scored_cat = False
    for rate, name in rated[:2]:
        if not _suggests(rate, base_cat):
            continue
        fid, fn, what, fix = remaps[name]
        fixed = [{**r, "category_id": c} for r in entries if (c := fn(r["category_id"])) is not None]
        after = score(fixed)
        if after - before >= MIN_CHANGE:
            scored_cat = True
            findings.append(Finding(fid, before, after,
                                    f"{what}: {base_cat:.0%} of the sampled detections name a class annotated "
                                    f"in their image as given, {rate:.0%} after the fix"
                                    + (f"; {unknown} detections use ids the annotation file does not define"
                                       if unknown else ""), fix))
    if unknown and not scored_cat:
        examples = sorted({r["category_id"] for r in entries if r["category_id"] not in gt.categories})[:5]
        findings.append(Finding("category-unknown", None, None,
                                f"{unknown} of {len(entries)} detections use category ids {examples} that "
                                f"{gt.path.name} does not define; COCO eval ignores them",
                                "write the annotation file's category ids (see its 'categories')"))

    # Boxes: every transform whose overlap evidence beats the file's own.
    base_box = _box_rate(sample, index)
    for fid, (fn, what, fix) in BOX_FIXES.items():
        rate = _box_rate(sample, index, fn)
        if not _suggests(rate, base_box):
            continue
        size = index.size
        fixed = [{**r, "bbox": fn(r["bbox"], size.get(r["image_id"], (1, 1)))} for r in entries]
        after = score(fixed)
        if after - before >= MIN_CHANGE:
            findings.append(Finding(fid, before, after,
                                    f"{what}: {base_box:.0%} of the sampled boxes overlap a ground-truth box "
                                    f"(IoU >= 0.5) as given, {rate:.0%} after the fix", fix))

    # Exact duplicates.
    seen: set[tuple] = set()
    unique = []
    for r in entries:
        key = (r["image_id"], r["category_id"], tuple(round(v, 2) for v in r["bbox"]), round(r["score"], 6))
        if key not in seen:
            seen.add(key)
            unique.append(r)
    if len(unique) < len(entries):
        dup = len(entries) - len(unique)
        findings.append(Finding("duplicates", before, score(unique),
                                f"{dup} of {len(entries)} detections repeat another exactly (image, category, "
                                "box, score); each copy is a false positive",
                                "write each detection once (merged shards or a resumed run appended twice?)"))

    # More than 100 detections an image.
    per_image = Counter(r["image_id"] for r in entries)
    over = {i: n for i, n in per_image.items() if n > MAX_DETS}
    if over:
        by_image: dict[int, list[dict]] = defaultdict(list)
        for r in entries:
            by_image[r["image_id"]].append(r)
        capped = [r for rs in by_image.values() for r in sorted(rs, key=lambda r: -r["score"])[:MAX_DETS]]
        findings.append(Finding("max-detections", before, score(capped),
                                f"{len(over)} images have more than {MAX_DETS} detections (up to "
                                f"{max(over.values())}); COCO eval keeps {MAX_DETS} per image *per category*, "
                                f"so the extra ones count, unlike the {MAX_DETS}-per-image rule of published AP",
                                f"keep the {MAX_DETS} best-scored detections of each image"))

    # Images: annotated but absent, or present but not annotated.
    covered = {r["image_id"] for r in entries}
    missing = [i for i in ids if i not in covered]
    strangers = covered - known_images

    # A score threshold: nothing below a clearly positive score, and few detections per image. Images
    # left empty by the cut are its symptom, reported here rather than as missing images.
    thresholded = False
    if entries:
        low = min(r["score"] for r in entries)
        full = sum(1 for n in per_image.values() if n >= MAX_DETS)
        if low >= 0.05 and full < 0.5 * max(len(per_image), 1):
            thresholded = True
            med = float(np.median(list(per_image.values())))
            empty = f"; {len(missing)} of {len(ids)} annotated images have none left" if missing else ""
            findings.append(Finding("score-threshold", None, None,
                                    f"no detection scores below {low:.3f}; median {med:g} detections per image"
                                    f"{empty}: the file was cut at a threshold, which lowers AP (recall is lost)",
                                    "write every detection down to score 0 (the decoder's top 100), no threshold"))

    if len(missing) > MISSING_FRACTION * len(ids) and covered & idset and not thresholded:
        on = [i for i in ids if i in covered]
        after = score(entries, on)
        findings.append(Finding("missing-images", before, after,
                                f"{len(missing)} of {len(ids)} annotated images have no detection (e.g. "
                                f"{missing[:3]}); their objects all count as missed. AP after: scored on the "
                                f"{len(on)} images present"
                                + (f"; {len(strangers)} result images are not in the annotations" if strangers
                                   else ""),
                                "run every image of the annotation file, or score only the images you ran"))
    elif strangers:
        findings.append(Finding("missing-images", None, None,
                                f"{len(strangers)} result images are not in {gt.path.name} (e.g. "
                                f"{sorted(strangers)[:3]}); COCO eval ignores them",
                                "check the image ids: results must use the annotation file's image ids"))

    for note in notes:
        findings.append(Finding("malformed", None, None, note, "write entries as {image_id, category_id, "
                                "bbox: [x, y, w, h], score}"))
    return sort_findings(findings)


def doctor_record_body(findings: Sequence[Finding], gt: CocoGroundTruth, results_path: str | Path | None,
                       detection_count: int, image_ids: Sequence[int] | None = None, engine: str = "faster",
                       wall_s: float | None = None) -> dict:
    """The body of a kind-"doctor" record: the dataset, the file examined, and the findings by impact."""
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    return {
        "dataset": gt.describe(ids),
        "results_file": str(results_path) if results_path is not None else None,
        "detection_count": detection_count,
        "engine": engine,
        "evidence": {"sample_per_image": SAMPLE_PER_IMAGE, "sample_images": SAMPLE_IMAGES,
                     "min_change": MIN_CHANGE},
        "wall_s": wall_s,
        "findings": [f.to_dict() for f in sort_findings(list(findings))],
    }


def doctor_file(gt: CocoGroundTruth, results_path: str | Path, image_ids: Sequence[int] | None = None,
                engine: str = "faster") -> tuple[list[Finding], dict]:
    """Read a results file leniently, diagnose it, and return the findings with their record body."""
    t0 = time.perf_counter()
    results, notes = read_results_leniently(results_path)
    findings = diagnose_results(gt, results, image_ids, engine, notes)
    body = doctor_record_body(findings, gt, results_path, len(results), image_ids, engine,
                              time.perf_counter() - t0)
    return findings, body
