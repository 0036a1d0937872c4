"""Paired ΔAP of a float and a quantized sibling, from the detection files their eval records name.

Two records scored on the same images can be resampled together: each bootstrap resample draws one set
of images and scores both models on it, so what makes an image hard for both cancels in the difference
(`harness.scoring.bootstrap.paired_delta`). The interval of the difference is then several times
narrower than the two models' own intervals suggest. The records hold what is needed: the detections
file and the annotation file (paths resolved as the gallery resolves them); where either is missing
here, the answer says which, and callers fall back to what the records alone can say.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.records.selection import model_name


@dataclass
class Paired:
    """`paired_delta`'s dict (difference quantized - float, fractions) or why there is none."""

    delta: dict | None
    reason: str | None = None


@dataclass
class MatchCache:
    """Ground truth by annotation path and matches by detections file, so a float model paired with
    several quantized siblings (and checked and reported in one process) is matched once."""

    gts: dict = field(default_factory=dict)
    matches: dict = field(default_factory=dict)


def _ground_truth(record: Mapping[str, Any], base_dir: Path | None, cache: MatchCache):
    from harness.analyse.report.gallery import resolve_path
    from harness.scoring.coco import CocoGroundTruth

    ann = resolve_path((record.get("dataset") or {}).get("annotations"), base_dir)
    if ann is None or not ann.is_file():
        return None
    key = str(ann.resolve())
    if key not in cache.gts:
        cache.gts[key] = CocoGroundTruth(ann)
    return cache.gts[key]


def record_matches(record: Mapping[str, Any], base_dir: Path | None = None, cache: MatchCache | None = None):
    """(Matches, ground truth) of an eval record's detections on the images it scored, or a reason string."""
    from harness.scoring.matching import match_once

    return cached_for_record("matches", record, base_dir, cache,
                             lambda gt, kept, ids: (match_once(gt, kept, ids), gt))


def cached_for_record(what: str, record: Mapping[str, Any], base_dir: Path | None, cache: MatchCache | None,
                      compute: Callable[[Any, list[dict], list[int]], Any]):
    """COMPUTE(ground truth, detections, image ids) on an eval record's detections limited to the images it
    scored, once per (WHAT, detections, image set) in CACHE; or a reason string when a file is not here."""
    from harness.analyse.report.gallery import load_detections, scored_image_ids

    cache = cache if cache is not None else MatchCache()
    name = model_name(record)
    gt = _ground_truth(record, base_dir, cache)
    if gt is None:
        return f"{name}: annotation file {(record.get('dataset') or {}).get('annotations')} not found here"
    key = (what, record.get("detections_sha256") or record.get("detections_file") or id(record),
           (record.get("dataset") or {}).get("image_ids_sha256"))
    if key not in cache.matches:
        dets = load_detections(record, base_dir)
        if dets is None:
            return f"{name}: detections file {record.get('detections_file')} not found here"
        known = {i.id for i in gt.images}
        by_image: dict[int, list[dict]] = {}
        for d in dets:
            if isinstance(d, dict) and d.get("image_id") in known:
                by_image.setdefault(d["image_id"], []).append(d)
        ids = scored_image_ids(record, gt, by_image)
        keep = set(ids)
        cache.matches[key] = compute(gt, [d for d in dets if d.get("image_id") in keep], ids)
    return cache.matches[key]


def paired_interval(f: Mapping[str, Any], q: Mapping[str, Any], base_dir: Path | None = None, *, resamples: int = 1000,
                    level: float = 0.95, seed: int = 0, cache: MatchCache | None = None) -> Paired:
    """The paired bootstrap of quantized minus float on the images both scored."""
    from harness.scoring.bootstrap import paired_delta

    if resamples < 2:
        return Paired(None, "no resamples asked for")
    fa, fb = (f.get("dataset") or {}), (q.get("dataset") or {})
    if fa.get("annotation_sha256") and fb.get("annotation_sha256") and \
            fa["annotation_sha256"] != fb["annotation_sha256"]:
        return Paired(None, "the two records were scored against different annotation files")
    cache = cache if cache is not None else MatchCache()
    a = record_matches(f, base_dir, cache)
    if isinstance(a, str):
        return Paired(None, a)
    b = record_matches(q, base_dir, cache)
    if isinstance(b, str):
        return Paired(None, b)
    if a[0].image_ids != b[0].image_ids:
        return Paired(None, f"{model_name(f)} and {model_name(q)} scored different images")
    if a[0].n_images < 2:
        return Paired(None, "fewer than 2 images: nothing to resample")
    return Paired(paired_delta(a[0], b[0], resamples=resamples, level=level, seed=seed))


def counts_from_ground_truth(record: Mapping[str, Any], base_dir: Path | None = None,
                             cache: MatchCache | None = None) -> dict[str, dict[str, int]]:
    """Ground-truth boxes and images per class on the images a record scored, for records written before
    eval kept them per class; {} when the annotation file is not here."""
    from harness.analyse.report.gallery import scored_image_ids
    from harness.scoring.bootstrap import class_counts

    gt = _ground_truth(record, base_dir, cache if cache is not None else MatchCache())
    if gt is None:
        return {}
    count = (record.get("dataset") or {}).get("image_count")
    ids = scored_image_ids(record, gt, {}) if count else None
    return class_counts(gt, ids or None)
