"""Pictures for a report: ground truth beside a model's boxes, or beside two models' boxes.

A table says that AP fell; a picture of the same image under both models says how. Images are chosen
by a per-image score computed with the official COCO matching (pycocotools, IoU 0.5): for one record
the images it does worst on, for a pair the images where the two disagree most. Pure Pillow + numpy
for the pictures; every choice is deterministic (ties broken by image id), so a report rebuilt from
the same records shows the same pictures.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.common.identity import image_ids_sha256
from harness.errors import HarnessError
from harness.measure.draw import caption, draw_boxes, prediction_box, side_by_side, truth_box
from harness.scoring.per_image import ImageScore, image_scores

if TYPE_CHECKING:
    from PIL import Image

    from harness.analyse.paired import MatchCache
    from harness.scoring.coco import CocoGroundTruth
    from harness.scoring.errors import Assignment

PANEL_MAX = 480  # pixels, each side of one panel: four pairs of three panels stay a few MB of PNG


@dataclass
class GalleryItem:
    image_id: int
    title: str  # e.g. "000000123456.jpg: f32 AP50 0.61, int8 AP50 0.00"
    png: bytes  # GT | predictions (one record) or GT | A | B (a pair), each panel captioned


# --------------------------------------------------------------------------------------------------
# Finding a record's files


def candidates(path: str, base_dir: Path | None, by_name: bool = False) -> list[Path]:
    """Where a file a record names may be, in the order tried: the path as given (absolute or from cwd), then
    under base_dir each tail of it, longest first ("runs/det/d.json", "det/d.json", and with `by_name` "d.json").

    Records keep the paths of the machine and folder they were written in; a folder of records copied
    elsewhere with its detections (or a mirror mounted at another root) keeps the tail of those paths.
    """
    p = Path(path)
    out = [p]
    if base_dir is not None:
        parts = p.parts[1:] if p.is_absolute() else p.parts  # the root or drive is what moved
        shortest = 1 if by_name else min(2, len(parts))
        out += [Path(base_dir).joinpath(*parts[i:]) for i in range(len(parts) - shortest + 1)]
    return list(dict.fromkeys(out))


def resolve_path(path: str | None, base_dir: Path | None, by_name: bool = False) -> Path | None:
    """An existing file or directory among `candidates` (the first found), else None."""
    if not path:
        return None
    return next((c for c in candidates(path, base_dir, by_name) if c.exists()), None)


def looked_for(what: str, path: str | None, base_dir: Path | None, by_name: bool = False) -> str:
    """'detections file /a/d.json not found (looked for it, then under /b as a/d.json, d.json)'."""
    if not path:
        return f"the record names no {what}"
    tried = candidates(path, base_dir, by_name)[1:]
    tails = ", ".join(str(c.relative_to(base_dir)) for c in tried) if base_dir is not None else ""
    return f"{what} {path} not found" + (f" (nor under {base_dir} as {tails})" if tails else "")


def missing_files(record: Mapping[str, Any], base_dir: Path | None = None) -> str | None:
    """Which file of a record's the gallery cannot find, and where it looked; None when all are here."""
    dataset = record.get("dataset") or {}
    wanted = [(dataset.get("annotations"), "annotation file", False, Path.is_file),
              (dataset.get("images_dir"), "images folder", True, Path.is_dir)]
    if not isinstance(record.get("detections"), list):
        wanted.append((record.get("detections_file"), "detections file", True, Path.is_file))
    for path, what, by_name, right_kind in wanted:
        found = resolve_path(path, base_dir, by_name)
        if found is None or not right_kind(found):
            return looked_for(what, path, base_dir, by_name)
    return None


def load_detections(record: Mapping[str, Any], base_dir: Path | None = None) -> list[dict] | None:
    """An eval record's detections: record["detections"] if embedded, else the JSON at record["detections_file"]
    (where `candidates` finds it: as given, or under base_dir = the records' directory); None if not found."""
    embedded = record.get("detections")
    if isinstance(embedded, list):
        return embedded
    path = resolve_path(record.get("detections_file"), base_dir, by_name=True)
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HarnessError(f"detections file is not JSON: {path}; re-run the eval that wrote it") from None
    if not isinstance(data, list):
        raise HarnessError(f"detections file is not a COCO results list: {path}")
    return data


@dataclass
class _Scored:
    """A record ready to draw: its ground truth, detections by image, the images it scored, a label."""

    gt: CocoGroundTruth
    by_image: dict[int, list[dict]]
    image_ids: list[int]
    label: str


def _prepare(record: Mapping[str, Any], base_dir: Path | None) -> _Scored | None:
    """Ground truth and detections of a record, or None when a file it names cannot be found."""
    from harness.scoring.coco import CocoGroundTruth

    dataset = record.get("dataset") or {}
    ann = resolve_path(dataset.get("annotations"), base_dir)
    images_dir = resolve_path(dataset.get("images_dir"), base_dir, by_name=True)
    if ann is None or not ann.is_file() or images_dir is None or not images_dir.is_dir():
        return None
    dets = load_detections(record, base_dir)
    if dets is None:
        return None
    gt = CocoGroundTruth(ann, images_dir)
    known = {i.id for i in gt.images}
    by_image: dict[int, list[dict]] = {}
    for d in dets:
        if isinstance(d, dict) and d.get("image_id") in known:
            by_image.setdefault(d["image_id"], []).append(d)
    model = record.get("model")
    label = (model.get("name") if isinstance(model, dict) else None) or record.get("model_label") or "model"
    return _Scored(gt, by_image, scored_image_ids(record, gt, by_image), str(label))


def scored_image_ids(record: Mapping[str, Any], gt: CocoGroundTruth, by_image: dict[int, list[dict]]) -> list[int]:
    """The images an eval scored: the first `image_count` ids of its ground truth (what --max-images takes),
    checked against the record's id hash; if the hash does not match, the images it has detections on."""
    dataset = record.get("dataset") or {}
    count = dataset.get("image_count")
    if isinstance(count, int) and count > 0:
        ids = [i.id for i in gt.images][:count]
        if image_ids_sha256(ids) == dataset.get("image_ids_sha256"):
            return ids
    return sorted(by_image)


def _same_dataset(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    da, db = a.get("dataset") or {}, b.get("dataset") or {}
    if da.get("annotation_sha256") and db.get("annotation_sha256"):
        return da["annotation_sha256"] == db["annotation_sha256"]
    return bool(da.get("annotations")) and da.get("annotations") == db.get("annotations")


# --------------------------------------------------------------------------------------------------
# Pictures


def _panel_image(scored: _Scored, image_id: int, max_side: int) -> tuple[Image.Image, float] | None:
    """The image shrunk to fit `max_side`, and the scale from original pixels; None if it cannot be read."""
    from PIL import Image

    info = scored.gt.image(image_id)
    try:
        with Image.open(scored.gt.image_path(info)) as im:
            im = im.convert("RGB")
    except (OSError, SyntaxError):
        return None
    scale = min(1.0, max_side / max(im.size))
    if scale < 1.0:
        im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))),
                       Image.Resampling.BILINEAR)
    return im, scale


def _scaled(bbox: Sequence[float], s: float) -> tuple[float, float, float, float]:
    x, y, w, h = (float(v) for v in bbox)
    return x * s, y * s, (x + w) * s, (y + h) * s


def _truth_panel(scored: _Scored, image_id: int, im: Image.Image, s: float) -> Image.Image:
    anns = [a for a in scored.gt.dataset["annotations"] if a["image_id"] == image_id]
    boxes = [truth_box(_scaled(a["bbox"], s), a["category_id"], scored.gt.categories, bool(a.get("iscrowd")))
             for a in anns]
    return caption(draw_boxes(im, boxes), f"ground truth: {_count(sum(not a.get('iscrowd') for a in anns), 'box')}")


def _prediction_panel(scored: _Scored, image_id: int, im: Image.Image, s: float, score: ImageScore, label: str,
                      threshold: float) -> Image.Image:
    dets = sorted((d for d in scored.by_image.get(image_id, []) if d["score"] >= threshold),
                  key=lambda d: d["score"])  # best drawn last, its label on top
    boxes = [prediction_box(_scaled(d["bbox"], s), d["category_id"], d["score"], scored.gt.categories)
             for d in dets]
    text = f"{label}: {_count(score.shown, 'box')} >= {threshold:.2f}, {score.matched} hit"
    if score.shown == 0:
        text += f" (best score {score.top_score:.2f})"
    return caption(draw_boxes(im, boxes), text)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}es" if noun.endswith("x") else f"{n} {noun}s"


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def _ap_text(score: ImageScore) -> str:
    return "no GT" if score.ap50 is None else f"AP50 {score.ap50:.2f}"


def short_labels(a: str, b: str) -> tuple[str, str]:
    """Names without their common dash-separated prefix ("mb3-centernet-f32", "...-int8" -> "f32", "int8")."""
    if a == b:
        return f"{a} (A)", f"{b} (B)"
    pa, pb = a.split("-"), b.split("-")
    n = 0
    while n < min(len(pa), len(pb)) - 1 and pa[n] == pb[n]:
        n += 1
    return "-".join(pa[n:]), "-".join(pb[n:])


# --------------------------------------------------------------------------------------------------
# The API the report calls


def single_gallery(record: Mapping[str, Any], n: int = 4, base_dir: Path | None = None,
                   score_threshold: float = 0.3) -> list[GalleryItem]:
    """Up to n images where the record did worst (lowest per-image AP50; among equals more ground truth
    first, then image id), each as ground truth | predictions. [] when its files cannot be found."""
    scored = _prepare(record, base_dir)
    if scored is None or n < 1:
        return []
    results = [d for ds in scored.by_image.values() for d in ds]
    scores = image_scores(scored.gt, results, scored.image_ids, score_threshold)
    ranked = sorted((i for i in scored.image_ids if scores[i].ap50 is not None),
                    key=lambda i: (scores[i].ap50, -scores[i].gt, i))
    items = []
    for image_id in ranked:
        loaded = _panel_image(scored, image_id, PANEL_MAX)
        if loaded is None:
            continue
        im, s = loaded
        sc = scores[image_id]
        picture = side_by_side([_truth_panel(scored, image_id, im, s),
                                _prediction_panel(scored, image_id, im, s, sc, scored.label, score_threshold)])
        name = scored.gt.image(image_id).file_name
        items.append(GalleryItem(image_id, f"{name}: {scored.label} {_ap_text(sc)}", _png(picture)))
        if len(items) == n:
            break
    return items


def pair_gallery(record_a: Mapping[str, Any], record_b: Mapping[str, Any], n: int = 4, base_dir: Path | None = None,
                 score_threshold: float = 0.3) -> list[GalleryItem]:
    """Up to n images both records scored, where they disagree most, each as ground truth | A | B.

    Disagreement: |AP50_a - AP50_b| per image, then the difference in matched boxes, then in boxes shown;
    ties go to the lower image id. Refuses two records over different ground truth; [] when files are missing.
    """
    if not _same_dataset(record_a, record_b):
        da, db = (r.get("dataset") or {} for r in (record_a, record_b))
        raise HarnessError(f"cannot pair records over different datasets ({da.get('annotations')} vs "
                           f"{db.get('annotations')}); compare two evals of the same annotation file")
    a, b = _prepare(record_a, base_dir), _prepare(record_b, base_dir)
    if a is None or b is None or n < 1:
        return []
    common = sorted(set(a.image_ids) & set(b.image_ids))
    if not common:
        return []
    sa = image_scores(a.gt, [d for ds in a.by_image.values() for d in ds], common, score_threshold)
    sb = image_scores(b.gt, [d for ds in b.by_image.values() for d in ds], common, score_threshold)

    def disagreement(i: int) -> tuple:
        ap = abs((sa[i].ap50 or 0.0) - (sb[i].ap50 or 0.0))
        return (-ap, -abs(sa[i].matched - sb[i].matched), -abs(sa[i].shown - sb[i].shown), i)

    la, lb = short_labels(a.label, b.label)
    items = []
    for image_id in sorted(common, key=disagreement):
        loaded = _panel_image(a, image_id, PANEL_MAX)
        if loaded is None:
            continue
        im, s = loaded
        picture = side_by_side([_truth_panel(a, image_id, im, s),
                                _prediction_panel(a, image_id, im, s, sa[image_id], la, score_threshold),
                                _prediction_panel(b, image_id, im, s, sb[image_id], lb, score_threshold)])
        name = a.gt.image(image_id).file_name
        title = f"{name}: {la} {_ap_text(sa[image_id])}, {lb} {_ap_text(sb[image_id])}"
        items.append(GalleryItem(image_id, title, _png(picture)))
        if len(items) == n:
            break
    return items


# --------------------------------------------------------------------------------------------------
# Pictures of error types (harness.scoring.errors): where a quantized model gained each kind of error

ERROR_COLOURS = {"tp": (0, 170, 0), "cls": (255, 140, 0), "loc": (255, 215, 0), "both": (160, 32, 240),
                 "dupe": (0, 190, 255), "bkg": (230, 0, 0), "miss": (255, 0, 200)}


def _error_panel(scored: _Scored, assigned: tuple[Assignment, CocoGroundTruth, list[dict]], image_id: int,
                 im: Image.Image, s: float, label: str, threshold: float, focus: str | None = None,
                 focus_top: int = 5) -> Image.Image:
    """A model's detections >= threshold coloured by their TIDE kind (true positive green), the `focus_top`
    best of the `focus` kind even below the threshold (a weak model's errors are faint), and the boxes it
    missed outright in the `miss` colour."""
    from harness.measure.draw import Box
    from harness.scoring.errors import _KIND, TP

    a, results = assigned[0], assigned[2]
    kinds = {code: name for name, code in _KIND.items()} | {TP: "tp"}
    img = a.image_ids.index(image_id)
    mine = [i for i in range(a.det_img.size) if a.det_img[i] == img and int(a.det_kind[i]) in kinds
            and not a.det_ignored[i]]
    focused = sorted((i for i in mine if kinds[int(a.det_kind[i])] == focus), key=lambda i: -a.det_score[i])
    sel = sorted(set(i for i in mine if a.det_score[i] >= threshold) | set(focused[:focus_top]))
    boxes: list[Box] = []
    counts: dict[str, int] = {}
    for i in sorted(sel, key=lambda i: a.det_score[i]):
        kind = kinds[int(a.det_kind[i])]
        counts[kind] = counts.get(kind, 0) + 1
        d = results[int(a.det_ref[i])]
        name = scored.gt.categories.get(d["category_id"], str(d["category_id"]))
        boxes.append(Box(*_scaled(d["bbox"], s), label=f"{kind} {name} {d['score']:.2f}", colour=ERROR_COLOURS[kind]))
    anns = scored.gt.dataset["annotations"]
    for g in range(a.gt_img.size):
        if a.gt_img[g] == img and a.gt_missed[g]:
            ann = anns[int(a.gt_ref[g])]
            counts["miss"] = counts.get("miss", 0) + 1
            boxes.append(Box(*_scaled(ann["bbox"], s), label=f"missed {scored.gt.categories[ann['category_id']]}",
                             colour=ERROR_COLOURS["miss"]))
    text = f"{label}: " + (", ".join(f"{v} {k}" for k, v in counts.items()) or "nothing >= threshold")
    return caption(draw_boxes(im, boxes), text)


def error_gallery(record_a: Mapping[str, Any], record_b: Mapping[str, Any], images: Mapping[str, Sequence[dict]],
                  base_dir: Path | None = None, score_threshold: float = 0.3, per_type: int = 1,
                  cache: MatchCache | None = None) -> list[tuple[str, GalleryItem]]:
    """For each error type, the `per_type` images where B gained most of it (error_shift's `images`), each as
    ground truth | A | B with boxes coloured by error type (and that type's best detections shown even below
    the threshold): (type, item) pairs; [] when files are missing."""
    from harness.analyse.error_shift import record_assignment
    from harness.analyse.paired import MatchCache

    a, b = _prepare(record_a, base_dir), _prepare(record_b, base_dir)
    if a is None or b is None:
        return []
    cache = cache if cache is not None else MatchCache()
    ea, eb = record_assignment(record_a, base_dir, cache), record_assignment(record_b, base_dir, cache)
    if isinstance(ea, str) or isinstance(eb, str):
        return []
    la, lb = short_labels(a.label, b.label)
    out = []
    for kind, rows in images.items():
        for row in list(rows)[:per_type]:
            image_id = int(row["image_id"])
            loaded = _panel_image(a, image_id, PANEL_MAX)
            if loaded is None:
                continue
            im, s = loaded
            picture = side_by_side([_truth_panel(a, image_id, im, s),
                                    _error_panel(a, ea, image_id, im, s, la, score_threshold, kind),
                                    _error_panel(b, eb, image_id, im, s, lb, score_threshold, kind)])
            name = a.gt.image(image_id).file_name
            out.append((kind, GalleryItem(image_id, f"{name}: {lb} gained {kind} error here", _png(picture))))
    return out
