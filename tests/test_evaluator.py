"""COCO scoring: the cocoapi known answer, the engines agreeing, empty input, results conversion.

pycocotools is the reference; faster-coco-eval, hotcoco and ultrafast-pycocotools must give the same
numbers: on the cocoapi demo's known-answer test and on random problems with crowds and ties (and, in
the slow tier, on a 5,000-image COCO-shaped set). "auto" (the default) picks the fastest installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.models.decoders import Detections
from harness.scoring.coco import CocoGroundTruth, ImageInfo, to_results
from harness.scoring.evaluator import (
    ENGINES,
    FASTEST_FIRST,
    STAT_KEYS,
    CocoEvaluator,
    resolve_engine,
    score_results,
)

ENGINE_NAMES = ("pycocotools", "faster", "hotcoco", "ultrafast")


FAST_ENGINES = ENGINE_NAMES[1:]


def test_every_engine_is_registered_and_auto_is_the_fastest() -> None:
    assert set(ENGINE_NAMES) <= set(ENGINES)
    assert [name for name, _ in FASTEST_FIRST] == ["ultrafast", "hotcoco", "faster", "pycocotools"]
    assert resolve_engine("auto") == "ultrafast"  # installed with the coco extra
    assert resolve_engine("pycocotools") == "pycocotools"


def test_auto_falls_back_to_what_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the Rust and ultrafast wheels "auto" is faster-coco-eval; with none, one line to fix it."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("ultrafast_pycocotools", "hotcoco") else real(name, *a))
    assert resolve_engine("auto") == "faster"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(HarnessError, match=r"no COCO scoring engine is installed: pip install"):
        resolve_engine("auto")


# --------------------------------------------------------------------------------------------------
# The cocoapi known answer (pycocoEvalDemo: 100 val2014 images, fake bbox results)


@pytest.fixture(scope="module")
def known_answer(mirror: Path) -> Path:
    return mirror / "coco" / "known_answer"


def expected_stats(known_answer: Path) -> tuple[list[float], list[float]]:
    """(full precision, 3-decimal) bbox stats from EXPECTED.txt."""
    text = (known_answer / "EXPECTED.txt").read_text()
    full = re.search(r"^FULL precision pycocotools \S+ bbox (\[.*\])$", text, re.M)
    rounded = re.search(r"^bbox \(instances_val2014_fakebbox100_results\.json\): ([\d. ]+)$", text, re.M)
    assert full and rounded, "EXPECTED.txt lacks the bbox lines"
    return json.loads(full.group(1)), [float(v) for v in rounded.group(1).split()]


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_known_answer_through_the_cli(engine: str, known_answer: Path, tmp_path: Path) -> None:
    """`harness eval --results` reproduces the 12 stats pycocotools prints for the demo, to 1e-12."""
    full, rounded = expected_stats(known_answer)
    assert len(full) == len(rounded) == 12
    record = tmp_path / "score.json"
    rc = main(["eval", "--gt", str(known_answer / "instances_val2014_100.json"),
               "--results", str(known_answer / "instances_val2014_fakebbox100_results.json"),
               "--engine", engine, "--json", str(record)])
    assert rc == 0
    results = json.loads(record.read_text())["results"]
    assert results["engine"] == engine
    assert results["image_count"] == 100
    got = [results["stats"][k] for k in STAT_KEYS]
    assert got == pytest.approx(full, abs=1e-12, rel=0)
    assert [round(v, 3) for v in got] == rounded


# --------------------------------------------------------------------------------------------------
# The engines agree on random problems


def random_problem(seed: int, n_images: int = 200, score_decimals: int | None = None) -> tuple[dict, list[dict]]:
    """Random ground truth (all sizes, 5% crowd) and noisy detections made from it.

    Detections: 80% of the objects found with jittered boxes, 10% of those with a random class, a few
    false positives per image, and every tenth image with no detections at all. `score_decimals`
    rounds the scores to create ties.
    """
    rng = np.random.default_rng(seed)
    cat_ids = [1, 3, 7, 18, 90]
    images, anns, dets = [], [], []

    def score(hi: float = 1.0) -> float:
        s = float(rng.uniform(0, hi))
        return round(s, score_decimals) if score_decimals is not None else s

    for n in range(n_images):
        image_id, w, h = 1000 + 3 * n, int(rng.integers(200, 800)), int(rng.integers(200, 800))
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": w, "height": h})
        detect = n % 10 != 9
        for _ in range(int(rng.integers(0, 8))):
            bw, bh = rng.uniform(3, w / 2), rng.uniform(3, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            cat = int(rng.choice(cat_ids))
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": cat, "bbox": [x, y, bw, bh],
                         "area": bw * bh * rng.uniform(0.5, 1.0), "iscrowd": int(rng.random() < 0.05)})
            if detect and rng.random() < 0.8:
                jx, jy, jw, jh = rng.normal(0, 0.1, 4) * [bw, bh, bw, bh]
                label = cat if rng.random() < 0.9 else int(rng.choice(cat_ids))
                dets.append({"image_id": image_id, "category_id": label,
                             "bbox": [x + jx, y + jy, max(1.0, bw + jw), max(1.0, bh + jh)], "score": score()})
        for _ in range(int(rng.integers(0, 4)) if detect else 0):
            dets.append({"image_id": image_id, "category_id": int(rng.choice(cat_ids)),
                         "bbox": [rng.uniform(0, w / 2), rng.uniform(0, h / 2), rng.uniform(2, w / 2),
                                  rng.uniform(2, h / 2)], "score": score(0.5)})
    gt = {"images": images, "annotations": anns, "categories": [{"id": c, "name": f"class{c}"} for c in cat_ids]}
    return gt, dets


def load_gt(tmp_path: Path, dataset: dict, name: str = "instances_synthetic.json") -> CocoGroundTruth:
    path = tmp_path / name
    path.write_text(json.dumps(dataset))
    return CocoGroundTruth(path)


@pytest.mark.parametrize("engine", FAST_ENGINES)
@pytest.mark.parametrize(("seed", "score_decimals"), [(0, None), (1, None), (2, 1)], ids=["seed0", "seed1", "ties"])
def test_engines_agree_on_a_random_problem(tmp_path: Path, seed: int, score_decimals: int | None,
                                           engine: str) -> None:
    """pycocotools and each fast engine: identical 12 stats and per-class AP (1e-12) on 200 random images."""
    dataset, dets = random_problem(seed, score_decimals=score_decimals)
    assert any(a["iscrowd"] for a in dataset["annotations"])
    gt = load_gt(tmp_path, dataset)
    ref = score_results(gt, dets, engine="pycocotools")
    fast = score_results(gt, dets, engine=engine)
    assert 0.05 < ref.stats["AP"] < 0.9, "the problem should be neither trivial nor hopeless"
    for key in STAT_KEYS:
        assert fast.stats[key] == pytest.approx(ref.stats[key], abs=1e-12, rel=0), key
    assert fast.per_class.keys() == ref.per_class.keys() == {f"class{c}" for c in (1, 3, 7, 18, 90)}
    for name, ref_ap in ref.per_class.items():
        for key, value in ref_ap.items():
            assert fast.per_class[name][key] == pytest.approx(value, abs=1e-12, rel=0), (name, key)
    assert ref.image_count == fast.image_count == 200
    assert ref.detection_count == fast.detection_count == len(dets)


@pytest.mark.slow
def test_fast_engines_are_exact_on_a_full_coco_sized_set(tmp_path: Path) -> None:
    """5,000 images, 500k detections shaped like val2017 (tests/synthetic_sets.py): every fast engine's 12 stats
    and per-class AP equal pycocotools' to the last digit, which is what lets "auto" take the fastest."""
    from synthetic_sets import coco_shaped_set

    dataset, dets = coco_shaped_set(5000, seed=0)
    gt = load_gt(tmp_path, dataset)
    ref = score_results(gt, dets, engine="pycocotools")
    assert len(dets) == 500_000 and 0.05 < ref.stats["AP"] < 0.6
    for engine in FAST_ENGINES:
        fast = score_results(gt, dets, engine=engine)
        assert fast.stats == ref.stats, engine
        gaps = [abs(fast.per_class[n][k] - v) for n, row in ref.per_class.items() for k, v in row.items()]
        # faster-coco-eval's per-class AP can differ in the last bit (its precision sums in another order);
        # the engines "auto" prefers must not differ at all.
        assert max(gaps) <= 1e-15, engine
        if engine in ("ultrafast", "hotcoco"):
            assert fast.per_class == ref.per_class, engine


def test_engines_agree_on_a_subset_of_images(tmp_path: Path) -> None:
    """Scoring only some image ids gives the same numbers on every engine, and differs from all images."""
    dataset, dets = random_problem(3)
    gt = load_gt(tmp_path, dataset)
    ids = [i.id for i in gt.images][:50]
    ref, *fast_ones = (score_results(gt, dets, ids, engine=e) for e in ENGINE_NAMES)
    for fast in fast_ones:
        assert [fast.stats[k] for k in STAT_KEYS] == pytest.approx([ref.stats[k] for k in STAT_KEYS], abs=1e-12,
                                                                   rel=0), fast.engine
    assert ref.image_count == 50
    assert ref.stats != score_results(gt, dets, engine="pycocotools").stats


def test_unknown_engine(tmp_path: Path) -> None:
    gt = load_gt(tmp_path, random_problem(0, n_images=2)[0])
    with pytest.raises(HarnessError, match="unknown engine"):
        score_results(gt, [], engine="nope")
    with pytest.raises(HarnessError, match="unknown engine"):
        CocoEvaluator(gt, engine="nope")


# --------------------------------------------------------------------------------------------------
# No detections at all


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_no_detections_scores_zero(engine: str, known_answer: Path) -> None:
    """An empty results list scores AP 0 (not a crash: pycocotools' own loadRes fails on [])."""
    gt = CocoGroundTruth(known_answer / "instances_val2014_100.json")
    result = score_results(gt, [], engine=engine)
    assert result.stats == dict.fromkeys(STAT_KEYS, 0.0)  # every size range has objects here
    assert result.detection_count == 0 and result.image_count == 100
    assert {v["AP"] for v in result.per_class.values()} <= {0.0, -1.0}


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_no_detections_and_no_small_objects(engine: str, tmp_path: Path) -> None:
    """Where the ground truth has nothing (no small objects here) the stat is -1, as pycocotools reports."""
    gt = load_gt(tmp_path, {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 200, 200], "area": 40000,
                         "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "bicycle"}],
    })
    result = score_results(gt, [], engine=engine)
    expected = dict.fromkeys(STAT_KEYS, 0.0) | {"APs": -1.0, "APm": -1.0, "ARs": -1.0, "ARm": -1.0}
    assert result.stats == expected
    assert result.per_class["person"]["AP"] == 0.0
    assert result.per_class["bicycle"]["AP"] == -1.0, "a class absent from the ground truth has no AP"


# --------------------------------------------------------------------------------------------------
# CocoEvaluator: image by image


@pytest.fixture
def two_images(tmp_path: Path) -> CocoGroundTruth:
    """Two 640x480 images, one person each."""
    return load_gt(tmp_path, {
        "images": [{"id": 1, "file_name": "1.jpg", "width": 640, "height": 480},
                   {"id": 2, "file_name": "2.jpg", "width": 640, "height": 480}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [64, 48, 256, 192], "area": 49152,
                         "iscrowd": 0},
                        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [64, 48, 256, 192], "area": 49152,
                         "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}],
    })


def exact_person() -> Detections:
    """A detection matching [64, 48, 256, 192] on 640x480: normalised [ymin, xmin, ymax, xmax]."""
    return Detections(np.array([[0.1, 0.1, 0.5, 0.5]], np.float32), np.array([0.9], np.float32),
                      np.array([1], np.int64))


@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_an_image_without_detections_still_counts(engine: str, two_images: CocoGroundTruth) -> None:
    """Processing an empty Detections puts the image in the evaluated ids: its missed object costs recall."""
    ev = CocoEvaluator(two_images, engine)
    ev.process(two_images.image(1), exact_person())
    only_first = ev.evaluate()
    assert only_first.image_count == 1
    assert only_first.stats["AP"] == pytest.approx(1.0)

    ev.process(two_images.image(2), Detections.empty())
    both = ev.evaluate()
    assert both.image_count == 2
    assert both.detection_count == 1
    assert both.stats["AR100"] == pytest.approx(0.5)
    assert both.stats["AP"] == pytest.approx(51 / 101)  # precision 1 up to recall 0.5, on 101 recall points


def test_reset_forgets_everything(two_images: CocoGroundTruth) -> None:
    ev = CocoEvaluator(two_images, "pycocotools")
    ev.process(two_images.image(2), Detections.empty())
    ev.reset()
    ev.process(two_images.image(1), exact_person())
    assert ev.image_ids == [1]
    assert ev.evaluate().stats["AP"] == pytest.approx(1.0)


def test_evaluator_applies_score_threshold(two_images: CocoGroundTruth) -> None:
    """Detections under the protocol's score threshold never reach the results."""
    ev = CocoEvaluator(two_images, "pycocotools", score_threshold=0.95)
    ev.process(two_images.image(1), exact_person())
    assert ev.results == []
    assert ev.evaluate().stats["AP"] == 0.0


# --------------------------------------------------------------------------------------------------
# Normalised boxes -> results entries

IMAGE = ImageInfo(id=139, file_name="000000000139.jpg", width=640, height=427)
BOXES = np.array([  # [ymin, xmin, ymax, xmax], normalised, float32 as decoders give them
    [0.0012, -0.01, 0.5, 0.75],  # corner outside the image, min corner under one pixel
    [0.25, 0.3, 1.1, 0.999],  # max corner beyond the image
    [0.5, 0.7, 0.9, 0.8],  # float32(0.7) * 640 = 447.99999... in float64
], np.float32)
SCORES = np.array([0.9, 0.123456789, 0.05], np.float32)
CLASSES = np.array([1, 90, 18], np.int64)


def test_float_convention_gives_absolute_xywh() -> None:
    """The official convention: x = xmin*W, y = ymin*H, w and h in pixels; no clamping, 4 decimals."""
    results = to_results(IMAGE, Detections(BOXES, SCORES, CLASSES), "float")
    assert [r["image_id"] for r in results] == [139, 139, 139]
    assert [r["category_id"] for r in results] == [1, 90, 18]
    assert [r["score"] for r in results] == [0.9, 0.123457, 0.05]
    expected = [
        [-6.4, 0.5124, 486.4, 212.9876],  # x = -0.01*640, y = 0.0012*427, w = 480 + 6.4, h = 213.5 - 0.5124
        [192.0, 106.75, 447.36, 362.95],  # w = 639.36 - 192, h = 469.7 - 106.75
        [448.0, 213.5, 64.0, 170.8],  # w = 512 - 448, h = 384.3 - 213.5
    ]
    for r, box in zip(results, expected, strict=True):
        assert r["bbox"] == pytest.approx(box, abs=1e-4)
    assert all(isinstance(v, float) for r in results for v in r["bbox"])


def test_nxp_int_convention_replays_evaluate_py() -> None:
    """NXP evaluate.py: ymin=int(max(1,y*H)), xmin=int(max(1,x*W)), ymax=int(min(H,y2*H)), xmax=int(min(W,x2*W)).

    The products are taken in float64 (numpy 1.x promoted float32 * int so), which decides the third
    box: float32(0.7) * 640 is 447.99999237 in float64, truncated to 447.
    """
    results = to_results(IMAGE, Detections(BOXES, SCORES, CLASSES), "nxp_int")
    assert [r["bbox"] for r in results] == [
        [1.0, 1.0, 479.0, 212.0],  # xmin max(1, -6.4) = 1, ymin max(1, 0.51) = 1, xmax 480, ymax int(213.5) = 213
        [192.0, 106.0, 447.0, 321.0],  # xmax int(639.36) = 639, ymax min(427, 469.7) = 427, ymin int(106.75)
        [447.0, 213.0, 65.0, 171.0],  # xmin int(447.99999) = 447, xmax int(512.0000076) = 512, ymax int(384.29999)
    ]
    assert [r["score"] for r in results] == [0.9, 0.123457, 0.05]


def test_score_threshold_and_empty_detections() -> None:
    dets = Detections(BOXES, SCORES, CLASSES)
    assert [r["category_id"] for r in to_results(IMAGE, dets, "float", score_threshold=0.1)] == [1, 90]
    assert to_results(IMAGE, Detections.empty(), "float") == []
    assert to_results(IMAGE, Detections.empty(), "nxp_int") == []


def test_unknown_box_convention() -> None:
    with pytest.raises(HarnessError, match="unknown box convention"):
        to_results(IMAGE, Detections(BOXES, SCORES, CLASSES), "pixels")
