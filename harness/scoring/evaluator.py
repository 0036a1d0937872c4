"""COCO bbox evaluation behind one small contract (reset / process / evaluate) and a registry of engines.

The evaluator never sees a clock or a runtime: the runner hands it one image's detections at a time.
pycocotools is the reference engine. The others give the same 12 stats to the last digit (the test suite
checks each against it: the cocoapi known answer, random problems with crowds and ties, and a 5,000-image
COCO-shaped set in the slow tier) and differ only in speed; "auto", the default, is the fastest of them
that is installed (`FASTEST_FIRST`, from benchmarks/full_coco.py). None is needed to measure on a board:
every engine is imported when it scores.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.models.decoders import Detections
from harness.scoring.coco import CocoGroundTruth, ImageInfo, to_results

STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@dataclass
class EvalResult:
    """The 12 stats (fractions, as pycocotools gives them), AP per class, and how they were made."""

    stats: dict[str, float]
    per_class: dict[str, dict[str, float]]
    engine: str
    image_count: int
    detection_count: int
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"stats": self.stats, "per_class": self.per_class, "engine": self.engine,
                "image_count": self.image_count, "detection_count": self.detection_count, **self.extra}


# An engine takes (ground-truth dataset dict, results list, image ids) and returns (stats[12], precision).
Engine = Callable[[dict, list, Sequence[int]], tuple[list[float], np.ndarray]]
ENGINES: dict[str, Engine] = {}
DEFAULT_ENGINE = "auto"
# Exact engines, fastest first (5,000 images, 500k detections: ultrafast-pycocotools and hotcoco about 90x
# pycocotools, faster-coco-eval 4x); "auto" takes the first whose module is installed.
FASTEST_FIRST = (("ultrafast", "ultrafast_pycocotools"), ("hotcoco", "hotcoco"), ("faster", "faster_coco_eval"),
                 ("pycocotools", "pycocotools"))


def register_engine(name: str) -> Callable[[Engine], Engine]:
    def wrap(fn: Engine) -> Engine:
        ENGINES[name] = fn
        return fn

    return wrap


def resolve_engine(name: str) -> str:
    """An engine name as registered: "auto" becomes the fastest exact engine that is installed."""
    if name != "auto":
        if name not in ENGINES:
            raise HarnessError(f"unknown engine {name!r}; known: auto, {', '.join(sorted(ENGINES))}")
        return name
    from importlib.util import find_spec

    for engine, module in FASTEST_FIRST:
        if find_spec(module) is not None:
            return engine
    raise HarnessError("no COCO scoring engine is installed: pip install 'centernet-harness[coco]'")


def _results_dataset(gt: dict, results: list) -> dict:
    """A results 'dataset' built like loadRes does (area from the box, sequential ids, iscrowd 0).

    Building it here, once, lets both engines accept an empty result list (pycocotools' loadRes
    fails on one) and keeps their inputs identical.
    """
    anns = []
    for i, r in enumerate(results, start=1):
        x, y, w, h = r["bbox"]
        anns.append({"id": i, "image_id": r["image_id"], "category_id": r["category_id"],
                     "bbox": [x, y, w, h], "area": w * h, "score": r["score"], "iscrowd": 0})
    return {"images": gt["images"], "categories": gt["categories"], "annotations": anns}


@register_engine("pycocotools")
def _pycocotools(gt: dict, results: list, image_ids: Sequence[int]) -> tuple[list[float], np.ndarray]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise HarnessError("the pycocotools engine needs pycocotools: pip install 'centernet-harness[coco]'") from None
    with contextlib.redirect_stdout(io.StringIO()):
        cg, cd = COCO(), COCO()
        cg.dataset, cd.dataset = gt, _results_dataset(gt, results)
        cg.createIndex()
        cd.createIndex()
        ev = COCOeval(cg, cd, "bbox")
        ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], np.asarray(ev.eval["precision"])


@register_engine("faster")
def _faster(gt: dict, results: list, image_ids: Sequence[int]) -> tuple[list[float], np.ndarray]:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        raise HarnessError("the faster engine needs faster-coco-eval: pip install 'centernet-harness[coco]' "
                           "or use --engine pycocotools") from None
    with contextlib.redirect_stdout(io.StringIO()):
        cg, cd = COCO(), COCO()
        cg.dataset, cd.dataset = gt, _results_dataset(gt, results)
        cg.createIndex()
        cd.createIndex()
        ev = COCOeval_faster(cg, cd, "bbox", print_function=lambda *a, **k: None)
        ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats[:12]], np.asarray(ev.eval["precision"])


def _results_array(results: list) -> np.ndarray:
    """The results as the [N, 7] array (image_id, x, y, w, h, score, category_id) the compiled engines load
    without building a dict per detection; they fill area (w*h), iscrowd and ids as loadRes does."""
    n = len(results)
    rows = np.empty((n, 7))  # a column at a time, straight from the dicts: no tuple per detection

    def column(key: str) -> Iterator[Any]:
        return map(itemgetter(key), results)

    rows[:, 0] = np.fromiter(column("image_id"), np.float64, count=n)
    rows[:, 1:5] = np.fromiter(chain.from_iterable(column("bbox")), np.float64, count=4 * n).reshape(n, 4)
    rows[:, 5] = np.fromiter(column("score"), np.float64, count=n)
    rows[:, 6] = np.fromiter(column("category_id"), np.float64, count=n)
    return rows


@register_engine("hotcoco")
def _hotcoco(gt: dict, results: list, image_ids: Sequence[int]) -> tuple[list[float], np.ndarray]:
    try:
        import hotcoco
    except ImportError:
        raise HarnessError("the hotcoco engine needs hotcoco: pip install 'centernet-harness[coco]'") from None
    with contextlib.redirect_stdout(io.StringIO()):
        cg = hotcoco.COCO(gt)
        cd = cg.load_res(_results_array(results)) if results else hotcoco.COCO(_results_dataset(gt, results))
        ev = hotcoco.COCOeval(cg, cd, "bbox")
        ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.eval is not None  # set by accumulate()
    return [float(s) for s in ev.stats[:12]], np.asarray(ev.eval["precision"])


def ultrafast_cocoeval(gt: dict, results: list, image_ids: Sequence[int]):
    """An evaluated ultrafast-pycocotools COCOeval (bbox): the ultrafast engine's, and the bootstrap's
    matching (harness.scoring.matching reads its per-detection verdicts)."""
    try:
        import ultrafast_pycocotools as uf
    except ImportError:
        raise HarnessError("the ultrafast engine needs ultrafast-pycocotools: "
                           "pip install 'centernet-harness[coco]'") from None
    cg = uf.COCO(verbose=False)
    cg.dataset = gt
    cg.createIndex()
    if results:
        with contextlib.redirect_stdout(io.StringIO()):
            cd = cg.loadRes(_results_array(results))
    else:  # loadRes refuses an empty list, as pycocotools' does
        cd = uf.COCO(verbose=False)
        cd.dataset = _results_dataset(gt, results)
        cd.createIndex()
    ev = uf.COCOeval(cg, cd, "bbox", print_function=lambda *a, **k: None)
    ev.params.imgIds = list(image_ids)
    ev.evaluate()
    return ev


@register_engine("ultrafast")
def _ultrafast(gt: dict, results: list, image_ids: Sequence[int]) -> tuple[list[float], np.ndarray]:
    ev = ultrafast_cocoeval(gt, results, image_ids)
    ev.accumulate()
    ev.summarize()
    return [float(s) for s in ev.stats[:12]], np.asarray(ev.eval["precision"])


# What --engine accepts: "auto" and every registered engine.
ENGINE_CHOICES = (DEFAULT_ENGINE, *sorted(ENGINES))


def score_results(gt: CocoGroundTruth, results: list, image_ids: Sequence[int] | None = None,
                  engine: str = DEFAULT_ENGINE) -> EvalResult:
    """Score a results list against the ground truth on `image_ids` (default: every image).

    Each class's row carries its ground-truth `instances` and the `images` holding them: an AP from a
    handful of boxes is noise, and a reader (or the report's ranking) must be able to tell.
    """
    from harness.scoring.bootstrap import class_counts

    engine = resolve_engine(engine)
    fn = ENGINES[engine]
    ids = [i.id for i in gt.images] if image_ids is None else list(image_ids)
    stats, precision = fn(gt.dataset, results, ids)
    cat_ids = sorted(gt.categories)
    per_class = _per_class(precision, cat_ids, gt.categories)
    for name, counts in class_counts(gt, ids).items():
        if name in per_class:
            per_class[name].update(instances=counts["instances"], images=counts["images"])
    return EvalResult(
        stats=dict(zip(STAT_KEYS, stats, strict=True)),
        per_class=per_class,
        engine=engine,
        image_count=len(ids),
        detection_count=len(results),
    )


def _per_class(precision: np.ndarray, cat_ids: list[int], names: dict[int, str]) -> dict[str, dict[str, float]]:
    """AP, AP50 and AP by object size per category, from the accumulated precision [T,R,K,A,M].

    A class with no ground truth in the evaluated images has no defined AP: it is reported as -1,
    the value pycocotools uses for "absent", never as 0.
    """
    def mean(p: np.ndarray) -> float:
        p = p[p > -1]
        return float(p.mean()) if p.size else -1.0

    out = {}
    for k, cid in enumerate(cat_ids):
        p = precision[:, :, k, :, -1]  # max dets 100
        out[names[cid]] = {
            "category_id": cid, "AP": mean(p[:, :, 0]), "AP50": mean(p[0, :, 0]),
            "APs": mean(p[:, :, 1]), "APm": mean(p[:, :, 2]), "APl": mean(p[:, :, 3]),
        }
    return out


class CocoEvaluator:
    """Collects detections image by image and scores them at the end (detectron2's evaluator shape)."""

    def __init__(self, gt: CocoGroundTruth, engine: str = DEFAULT_ENGINE, box_convention: str = "float",
                 score_threshold: float = 0.0) -> None:
        self.gt, self.engine = gt, resolve_engine(engine)
        self.box_convention, self.score_threshold = box_convention, score_threshold
        self.reset()

    def reset(self) -> None:
        """Forget everything processed so far."""
        self.results: list[dict] = []
        self.image_ids: list[int] = []

    def process(self, image: ImageInfo, detections: Detections) -> None:
        """Add one image's detections; the image counts even when it has none."""
        self.image_ids.append(image.id)
        self.results.extend(to_results(image, detections, self.box_convention, self.score_threshold))

    def evaluate(self) -> EvalResult:
        """Score everything processed since the last reset."""
        return score_results(self.gt, self.results, self.image_ids, self.engine)
