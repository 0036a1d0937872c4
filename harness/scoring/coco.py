"""COCO ground truth and the official results format; nothing here knows about models or runtimes."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, cast

import numpy as np

from harness.common.bulk import gc_paused
from harness.common.fileio import holds_long_digit_run, parse_json_bounded, read_regular_bytes
from harness.errors import HarnessError
from harness.models.decoders import Detections

# How normalised boxes become the pixel boxes of a results file. "float" is the official convention
# (absolute xywh, no rounding); "nxp_int" replays NXP evaluate.py (clamp min corner to >= 1 pixel,
# max corner to the image, truncate to integers), under which its published 17.2 mAP was measured.
BOX_CONVENTIONS = ("float", "nxp_int")


@dataclass(frozen=True)
class ImageInfo:
    id: int
    file_name: str
    width: int
    height: int


class CocoGroundTruth:
    """An instances_*.json file, validated once, with its images in id order.

    `image_info`: an image_info_*.json file (a test split: images and categories, no annotations).
    """

    def __init__(self, path: str | Path, images_dir: str | Path | None = None, *, image_info: bool = False) -> None:
        self.path = Path(path)
        self.images_dir = Path(images_dir) if images_dir is not None else None
        raw = read_regular_bytes(self.path, "annotation file")
        self.sha256 = hashlib.sha256(raw).hexdigest()
        try:
            data = parse_json_bounded(raw, str(self.path))
        except HarnessError as exc:
            raise HarnessError(f"not a COCO annotation file: {exc}") from None
        if image_info and isinstance(data, dict) and "annotations" not in data:
            data["annotations"] = []  # a test split's file: what runs, never what scores
        self.dataset = _validated(data, self.path)
        self.images = sorted((ImageInfo(int(i["id"]), str(i["file_name"]), int(i["width"]), int(i["height"]))
                              for i in self.dataset["images"]), key=lambda i: i.id)
        self._by_id = {i.id: i for i in self.images}
        self.categories = {int(c["id"]): str(c["name"]) for c in self.dataset["categories"]}

    def image(self, image_id: int) -> ImageInfo:
        return self._by_id[image_id]

    def image_path(self, info: ImageInfo) -> Path:
        if self.images_dir is None:
            raise HarnessError("no image directory was given for this annotation file")
        return self.images_dir / info.file_name

    def describe(self, image_ids: Sequence[int]) -> dict:
        """The dataset part of a run record: enough to tell whether two runs saw the same data."""
        ids = list(image_ids)
        stem = self.path.stem
        return {
            "split": next((stem.removeprefix(p) for p in ("instances_", "image_info_") if stem.startswith(p)), None),
            "annotations": str(self.path),
            "annotation_sha256": self.sha256,
            "images_dir": str(self.images_dir) if self.images_dir else None,
            "image_count": len(ids),
            "image_ids_sha256": hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest(),
            "annotation_count": _count_in(self.dataset["annotations"], set(ids)),
        }


def _count_in(annotations: list[dict], ids: set[int]) -> int:
    return sum(1 for a in annotations if a["image_id"] in ids)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    """A finite int or float: the one number policy of ground truth and results (JSON's true is not 1)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _is_box(v: object) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(map(_is_number, v))


# Field types the loader relies on: a wrong type is named in one line instead of escaping as a TypeError.
_FIELD_TYPES = {
    "images": {"id": (_is_int, "an integer"), "file_name": (lambda v: isinstance(v, str), "a string"),
               "width": (_is_int, "an integer"), "height": (_is_int, "an integer")},
    "categories": {"id": (_is_int, "an integer"), "name": (lambda v: isinstance(v, str), "a string")},
    "annotations": {"id": (_is_int, "an integer"), "image_id": (_is_int, "an integer"),
                    "category_id": (_is_int, "an integer"),
                    "bbox": (_is_box, "a list of 4 finite numbers")},
}
# Optional annotation fields: when present they must be of this type (pycocotools and faster-coco-eval
# read them differently when they are not, so the two engines would score the same file differently).
_OPTIONAL_TYPES = {"iscrowd": (lambda v: v in (0, 1) and not isinstance(v, bool), "0 or 1"),
                   "area": (_is_number, "a finite number")}


def _validated(data: object, path: Path) -> dict:
    what = f"not a COCO annotation file: {path}"
    if not isinstance(data, dict):
        raise HarnessError(f"{what} (top level is not an object)")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise HarnessError(f"{what} (no '{key}' list); give an instances_*.json file")
    for key, fields in _FIELD_TYPES.items():
        if all(_column_ok(data[key], f, ok) for f, (ok, _) in fields.items()):
            continue
        for item in data[key]:  # a column failed: find the first wrong entry and name it
            missing = [f for f in fields if not isinstance(item, dict) or f not in item]
            if missing:
                raise HarnessError(f"{what} (an entry of '{key}' lacks {', '.join(missing)})")
            for f, (ok, kind) in fields.items():
                if not ok(item[f]):
                    raise HarnessError(f"{what} ('{f}' of an entry of '{key}' is {item[f]!r}, not {kind})")
    if not data["categories"]:
        raise HarnessError(f"{what} (no categories)")
    annotations = data["annotations"]
    for f, (ok, kind) in _OPTIONAL_TYPES.items():
        present = [a for a in annotations if f in a]
        if not _column_ok(present, f, ok):
            for a in present:
                if not ok(a[f]):
                    raise HarnessError(f"{what} ('{f}' of annotation {a['id']} is {a[f]!r}, not {kind})")
    for a in annotations:  # optional in the format; filled once so both engines see the same data
        a.setdefault("iscrowd", 0)
        if "area" not in a:
            a["area"] = float(a["bbox"][2]) * float(a["bbox"][3])
    return data


def _numbers_ok(values: Iterable[object]) -> bool:
    """`_is_number` over a whole column at C speed: finite ints and floats (no bools)."""
    column = list(values)
    if set(map(type, column)) - {int, float}:
        return False
    return bool(np.isfinite(np.fromiter(column, np.float64, count=len(column))).all())


# Whole-column forms of the field checks, so a val2017-sized file is checked at C speed; where a column fails,
# the per-entry checks run and name the first wrong entry.
_COLUMN_CHECKS: dict[Callable[[object], bool], Callable[[list], bool]] = {
    _is_int: lambda column: set(map(type, column)) <= {int},
    _is_number: _numbers_ok,
    _is_box: lambda column: (set(map(type, column)) <= {list} and set(map(len, column)) <= {4}
                             and _numbers_ok(chain.from_iterable(column))),
}


def _column_ok(items: list, field: str, ok: Callable[[object], bool]) -> bool:
    """Every item a dict with `field`, and `ok` true of every value of it."""
    try:
        column = list(map(itemgetter(field), items))
    except (KeyError, TypeError):  # an item without the field, or not a dict
        return False
    check = _COLUMN_CHECKS.get(ok)
    return check(column) if check else all(map(ok, column))


def to_results(image: ImageInfo, dets: Detections, convention: str = "float",
               score_threshold: float = 0.0) -> list[dict]:
    """One image's detections as official results entries: absolute [x, y, w, h] pixels."""
    keep = dets.scores >= score_threshold
    boxes, scores, cats = dets.boxes[keep].astype(np.float64), dets.scores[keep], dets.category_ids[keep]
    h, w = image.height, image.width
    ymin, xmin, ymax, xmax = boxes[:, 0] * h, boxes[:, 1] * w, boxes[:, 2] * h, boxes[:, 3] * w
    if convention == "nxp_int":
        ymin, xmin = np.trunc(np.maximum(1, ymin)), np.trunc(np.maximum(1, xmin))
        ymax, xmax = np.trunc(np.minimum(h, ymax)), np.trunc(np.minimum(w, xmax))
    elif convention != "float":
        raise HarnessError(f"unknown box convention {convention!r}; use one of {BOX_CONVENTIONS}")
    xywh = np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=1)
    return [
        {"image_id": image.id, "category_id": int(c), "bbox": [round(float(v), 4) for v in b],
         "score": round(float(s), 6)}
        for b, s, c in zip(xywh, scores, cats, strict=True)
    ]


def read_results_json(path: str | Path) -> object:
    """A results file's JSON, unchecked; a missing file or one that is not JSON is a one-line error."""
    path = Path(path)
    return parse_json_bounded(read_regular_bytes(path, "results file"), f"results file {path}")


def load_results(path: str | Path, gt: CocoGroundTruth) -> list[dict]:
    """Read a results JSON file and check it against the ground truth, with one-line errors.

    Where msgspec is installed, a file in the plain results format is parsed and type-checked in one pass of
    compiled code (a 500k-detection file in a quarter of a second), and only the ids are left to check; the
    fields beyond the four that are scored are dropped. Any file that pass refuses goes through the general
    reader and `check_results`, which say what is wrong.
    """
    path = Path(path)
    raw = read_regular_bytes(path, "results file")
    typed = _decode_results(raw)
    if typed is not None:
        try:
            if _ids_known(list(map(_IMAGE_ID, typed)), list(map(_CATEGORY_ID, typed)), gt):
                return typed
        except OverflowError:  # an id beyond int64: check_results names it
            pass
    data = parse_json_bounded(raw, f"results file {path}")
    check_results(data, gt, str(path))
    return cast("list[dict]", data)  # check_results raised unless it is a list of detection dicts


def _decode_results(raw: bytes) -> list[dict] | None:
    """The results list, typed as the format says (integer ids, four finite numbers, a number), or None: no
    msgspec, or a file it refuses (bad JSON, a wrong type, a number out of range, anything deep)."""
    try:
        import msgspec
    except ImportError:
        return None
    if holds_long_digit_run(raw):  # msgspec reads integers of any length; the general reader bounds them
        return None
    try:
        with gc_paused():
            return cast("list[dict]", _results_decoder().decode(raw))
    except msgspec.DecodeError:  # ValidationError is one
        return None


@cache
def _results_decoder() -> Any:
    from typing import Annotated, TypedDict

    import msgspec

    number = int | float  # msgspec's int and float exclude bool, and a number too large for a float is refused
    Detection = TypedDict("Detection", {"image_id": int, "category_id": int, "score": number,  # noqa: UP013
                                        "bbox": Annotated[list[number], msgspec.Meta(min_length=4, max_length=4)]})
    return msgspec.json.Decoder(list[Detection])


# The fields a results entry is scored on, with the check each must pass.
_RESULT_TYPES = {"image_id": _is_int, "category_id": _is_int, "bbox": _is_box, "score": _is_number}
_RESULT_KEYS = frozenset(_RESULT_TYPES)
_IMAGE_ID, _CATEGORY_ID = itemgetter("image_id"), itemgetter("category_id")


def _well_formed(results: list, gt: CocoGroundTruth) -> bool:
    """Every entry right, checked a field at a time over all of them (a 500k-detection file in a fraction of a
    second); False sends `check_results` through them one by one to name the first that is wrong."""
    return (all(_column_ok(results, f, ok) for f, ok in _RESULT_TYPES.items())
            and _ids_known(list(map(_IMAGE_ID, results)), list(map(_CATEGORY_ID, results)), gt))


def _ids_known(images: Sequence[int], cats: Sequence[int], gt: CocoGroundTruth) -> bool:
    """Every image id in the ground truth and every category id among its categories."""
    return bool(np.isin(np.fromiter(images, np.int64, count=len(images)), np.fromiter(gt._by_id, np.int64)).all()
                and np.isin(np.fromiter(cats, np.int64, count=len(cats)), np.fromiter(gt.categories, np.int64)).all())


def check_results(results: object, gt: CocoGroundTruth, where: str = "results") -> None:
    if not isinstance(results, list):
        raise HarnessError(f"{where}: a COCO results file is a JSON list of detections")
    try:
        if _well_formed(results, gt):
            return
    except (OverflowError, ValueError):  # an id beyond int64: the loop below names it
        pass
    known = set(gt._by_id)
    for i, r in enumerate(results):
        if not (isinstance(r, dict) and r.keys() >= _RESULT_KEYS
                and isinstance(r["bbox"], list) and len(r["bbox"]) == 4):
            raise HarnessError(f"{where}: entry {i} is not a bbox detection "
                               "(needs image_id, category_id, bbox [x,y,w,h], score)")
        if not _is_int(r["image_id"]) or not _is_int(r["category_id"]):
            raise HarnessError(f"{where}: entry {i} has image_id {r['image_id']!r} and category_id "
                               f"{r['category_id']!r}; both must be integers")
        if r["image_id"] not in known:
            raise HarnessError(f"{where}: entry {i} has image_id {r['image_id']}, "
                               f"which is not in {gt.path.name}")
        if r["category_id"] not in gt.categories:
            raise HarnessError(f"{where}: entry {i} has category_id {r['category_id']}, which {gt.path.name} "
                               "does not define (results must use the annotation file's category ids)")
        if not _is_box(r["bbox"]) or not _is_number(r["score"]):
            raise HarnessError(f"{where}: entry {i} has a bbox or score that is not a finite number "
                               f"(bbox {r['bbox']!r}, score {r['score']!r})")
