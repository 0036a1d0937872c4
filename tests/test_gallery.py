"""Report galleries: which images are chosen (worst first, most disagreement first), what is drawn on them,
and that a missing file gives no pictures instead of an error."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import ImageSpec, make_coco, pixel_xywh

from harness.analyse.report.gallery import load_detections, pair_gallery, short_labels, single_gallery
from harness.errors import HarnessError
from harness.measure.draw import BLACK, WHITE, class_colour
from harness.scoring.coco import CocoGroundTruth
from harness.scoring.evaluator import score_results
from harness.scoring.per_image import image_scores

pytest.importorskip("pycocotools")

W, H = 640, 480  # shrunk to 480 x 360 panels
PERSON, CAR, CAT, DOG = 1, 3, 17, 18
OBJECTS = {
    1001: [(DOG, (0.2, 0.2, 0.7, 0.6))],
    1002: [(PERSON, (0.1, 0.1, 0.5, 0.4))],
    1003: [(CAR, (0.3, 0.3, 0.8, 0.9))],
    1004: [(DOG, (0.1, 0.1, 0.4, 0.4)), (CAT, (0.5, 0.5, 0.9, 0.9))],
    1005: [],  # no ground truth
}


def det(image_id: int, cat: int, box, score: float = 0.9) -> dict:
    return {"image_id": image_id, "category_id": cat, "bbox": pixel_xywh(box, W, H), "score": score}


# A finds everything. B finds 1001 and 1002, misses the car of 1003, finds only the dog of 1004, and puts a
# box on the empty 1005. Per-image AP50: A 1, 1, 1, 1, none; B 1, 1, 0, 0.5, none.
DETS_A = [det(i, c, b) for i, objs in OBJECTS.items() for c, b in objs]
DETS_B = [det(1001, DOG, OBJECTS[1001][0][1]), det(1002, PERSON, OBJECTS[1002][0][1]),
          det(1004, DOG, OBJECTS[1004][0][1]), det(1005, CAT, (0.2, 0.2, 0.4, 0.4), 0.8)]


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    specs = [ImageSpec(W, H, OBJECTS[i]) for i in sorted(OBJECTS)]
    return make_coco(tmp_path_factory.mktemp("coco"), specs, first_id=1001)


def gt_of(coco: Path) -> CocoGroundTruth:
    return CocoGroundTruth(coco / "annotations" / "instances_val2017.json", coco / "val2017")


def record(coco: Path, name: str, dets: list[dict], where: Path, count: int | None = None) -> dict:
    """An eval record as `harness eval` writes it, its detections in a file beside it (a relative path)."""
    gt = gt_of(coco)
    ids = [i.id for i in gt.images][:count]
    where.mkdir(parents=True, exist_ok=True)
    (where / f"detections_{name}.json").write_text(json.dumps(dets))
    return {"kind": "eval", "model": {"name": name}, "dataset": gt.describe(ids),
            "detections_file": f"detections_{name}.json"}


def picture(item) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(item.png)).convert("RGB"))


def test_pair_gallery_shows_the_images_where_the_two_disagree_most_first(coco, tmp_path):
    a = record(coco, "net-f32", DETS_A, tmp_path)
    b = record(coco, "net-int8", DETS_B, tmp_path)
    items = pair_gallery(a, b, n=5, base_dir=tmp_path)
    # |AP50 a - AP50 b|: 1003 by 1.0, 1004 by 0.5; then 1005 (same AP, one more box shown); then by id.
    assert [i.image_id for i in items] == [1003, 1004, 1005, 1001, 1002]
    assert items[0].title == "000000001003.jpg: f32 AP50 1.00, int8 AP50 0.00"
    assert items[1].title == "000000001004.jpg: f32 AP50 1.00, int8 AP50 0.50"
    assert items[2].title == "000000001005.jpg: f32 no GT, int8 no GT"
    assert [i.image_id for i in pair_gallery(a, b, n=2, base_dir=tmp_path)] == [1003, 1004]


def test_pair_picture_is_truth_then_a_then_b_each_drawn_in_its_style(coco, tmp_path):
    a = record(coco, "net-f32", DETS_A, tmp_path)
    b = record(coco, "net-int8", DETS_B, tmp_path)
    pic = picture(pair_gallery(a, b, n=1, base_dir=tmp_path)[0])  # 1003: a car at x 144..431, y 108..287
    bar = pic.shape[0] - 360
    assert pic.shape[1] == 3 * 480 + 2 * 4 and 10 < bar < 40  # three 480 px panels, each under a caption bar
    truth, pa, pb = pic[bar:, :480], pic[bar:, 484:964], pic[bar:, 968:]
    top = truth[108, 150:430]
    assert np.all((top == WHITE) | (top == BLACK))  # ground truth: black and white dashes
    assert np.all(top == WHITE, axis=1).sum() > 40 and np.all(top == BLACK, axis=1).sum() > 40
    assert tuple(pa[200, 144]) == class_colour(CAR) and tuple(pa[200, 431]) == class_colour(CAR)
    assert not np.all(pb == class_colour(CAR), axis=2).any()  # B found no car
    assert (pb[:, :100] == pa[:, :100]).all()  # the same picture under both (no box on its left side)


def test_single_gallery_shows_the_worst_images_first(coco, tmp_path):
    b = record(coco, "net-int8", DETS_B, tmp_path)
    items = single_gallery(b, n=4, base_dir=tmp_path)
    assert [i.image_id for i in items] == [1003, 1004, 1001, 1002]  # 1005 has no ground truth to fail on
    assert items[0].title == "000000001003.jpg: net-int8 AP50 0.00"
    pic = picture(items[0])
    assert pic.shape[1] == 2 * 480 + 4


def test_per_image_ap_is_what_the_official_evaluator_gives_on_that_image_alone(coco):
    gt = gt_of(coco)
    rng = np.random.default_rng(3)
    results = []
    for d in DETS_A + DETS_B:  # jittered copies and false alarms, over several score levels
        for _ in range(3):
            x, y, w, h = d["bbox"]
            jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
            results.append({**d, "bbox": [x + jitter[0], y + jitter[1], w + jitter[2], h + jitter[3]],
                            "score": float(rng.uniform(0.05, 1.0))})
    ids = [i.id for i in gt.images]
    scores = image_scores(gt, results, ids, 0.3)
    for i in ids:
        official = score_results(gt, [r for r in results if r["image_id"] == i], [i], "pycocotools").stats["AP50"]
        assert scores[i].ap50 == (None if official < 0 else pytest.approx(official, abs=1e-9)), i
    assert scores[1004].gt == 2 and scores[1005].gt == 0


def test_counts_of_shown_and_matched_boxes_use_the_display_threshold(coco):
    gt = gt_of(coco)
    results = [det(1004, DOG, OBJECTS[1004][0][1], 0.9), det(1004, CAT, OBJECTS[1004][1][1], 0.2),
               det(1004, CAT, (0.0, 0.0, 0.1, 0.1), 0.5)]
    s = image_scores(gt, results, [1004], 0.3)[1004]
    assert (s.shown, s.matched, s.top_score) == (2, 1, 0.9)
    assert s.ap50 == pytest.approx((1.0 + 0.5) / 2, abs=0.01)  # the cat is found, after a false alarm


def test_pair_only_uses_images_both_records_scored(coco, tmp_path):
    a = record(coco, "a", DETS_A, tmp_path)
    b = record(coco, "b", DETS_B, tmp_path, count=2)  # an eval run with --max-images 2
    assert {i.image_id for i in pair_gallery(a, b, n=5, base_dir=tmp_path)} == {1001, 1002}


def test_pair_refuses_records_over_different_datasets(coco, tmp_path):
    a = record(coco, "a", DETS_A, tmp_path)
    b = record(coco, "b", DETS_B, tmp_path)
    b["dataset"] = {**b["dataset"], "annotation_sha256": "0" * 64, "annotations": "/elsewhere/instances.json"}
    with pytest.raises(HarnessError, match="different datasets"):
        pair_gallery(a, b, base_dir=tmp_path)


def test_identical_records_are_ranked_by_image_id_and_render_identically(coco, tmp_path):
    a = record(coco, "same", DETS_A, tmp_path)
    first, second = pair_gallery(a, a, n=3, base_dir=tmp_path), pair_gallery(a, a, n=3, base_dir=tmp_path)
    assert [i.image_id for i in first] == [1001, 1002, 1003]
    assert [i.png for i in first] == [i.png for i in second]
    assert "same (A) AP50 1.00, same (B) AP50 1.00" in first[0].title


def test_missing_files_give_no_pictures_and_a_missing_image_is_skipped(coco, tmp_path):
    b = record(coco, "b", DETS_B, tmp_path)
    assert single_gallery(b, base_dir=tmp_path / "elsewhere") == []  # detections file not found
    assert single_gallery({**b, "dataset": {**b["dataset"], "images_dir": str(tmp_path / "gone")}},
                          base_dir=tmp_path) == []
    assert pair_gallery(b, {**b, "detections_file": "nope.json"}, base_dir=tmp_path) == []
    copy = make_coco(tmp_path / "copy", [ImageSpec(W, H, OBJECTS[i]) for i in sorted(OBJECTS)], first_id=1001)
    (copy / "val2017" / "000000001003.jpg").unlink()
    c = record(copy, "b", DETS_B, tmp_path)
    assert [i.image_id for i in single_gallery(c, n=2, base_dir=tmp_path)] == [1004, 1001]


def test_load_detections_embedded_absolute_cwd_and_beside_the_record(tmp_path, monkeypatch):
    dets = [det(1001, DOG, (0.1, 0.1, 0.2, 0.2))]
    assert load_detections({"detections": dets, "detections_file": "ignored.json"}) == dets
    (tmp_path / "runs").mkdir()
    f = tmp_path / "runs" / "d.json"
    f.write_text(json.dumps(dets))
    assert load_detections({"detections_file": str(f)}) == dets
    assert load_detections({"detections_file": "d.json"}, base_dir=tmp_path / "runs") == dets
    assert load_detections({"detections_file": "reports/demo/d.json"}, base_dir=tmp_path / "runs") == dets  # moved
    monkeypatch.chdir(tmp_path)
    assert load_detections({"detections_file": "runs/d.json"}) == dets
    assert load_detections({"detections_file": "d.json"}) is None
    assert load_detections({}) is None
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(HarnessError, match="not JSON"):
        load_detections({"detections_file": "bad.json"})


def test_short_labels_drop_the_shared_prefix():
    assert short_labels("mb3-centernet-f32", "mb3-centernet-int8") == ("f32", "int8")
    assert short_labels("a-f32", "b-f32") == ("a-f32", "b-f32")
    assert short_labels("m", "m") == ("m (A)", "m (B)")


def test_records_copied_elsewhere_find_their_detections_and_images_by_the_tail_of_their_paths(coco, tmp_path):
    """A folder of records and detections (and its COCO copy) moved to another root: the absolute paths the
    records hold are gone, their tails under the folder the records are read from are not."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(coco, old / "coco")
    b = record(old / "coco", "b", DETS_B, old / "runs" / "det")
    b["detections_file"] = str(old / "runs" / "det" / "detections_b.json")  # as eval writes it: absolute
    new = tmp_path / "new"
    shutil.move(old, new)
    assert not (old / "runs" / "det" / "detections_b.json").exists()
    assert [i.image_id for i in single_gallery(b, n=2, base_dir=new)] == [1003, 1004]
    assert [i.image_id for i in single_gallery(b, n=2, base_dir=new / "runs")] == []  # coco/ is not under runs/


def test_a_missing_file_is_named_with_every_place_looked_in(coco, tmp_path):
    from harness.analyse.report.gallery import missing_files

    b = record(coco, "b", DETS_B, tmp_path / "runs")
    assert missing_files(b, tmp_path / "runs") is None
    b["detections_file"] = "/gone/det/detections_b.json"
    assert missing_files(b, tmp_path / "else") == (
        f"detections file /gone/det/detections_b.json not found (nor under {tmp_path / 'else'} as "
        "gone/det/detections_b.json, det/detections_b.json, detections_b.json)")
    assert missing_files(b, None) == "detections file /gone/det/detections_b.json not found"
    b["dataset"] = {**b["dataset"], "images_dir": "/gone/coco/val2017"}
    assert missing_files(b, tmp_path).startswith("images folder /gone/coco/val2017 not found (nor under")
    assert missing_files({**b, "dataset": {}}, tmp_path) == "the record names no annotation file"
