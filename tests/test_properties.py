"""Property-based tests (hypothesis): the COCO loader, the results writer, the checkpoint, the shard split.

Each property is a rule the rest of the harness leans on: the loader either loads a file or says in
one HarnessError why not; every results entry survives a JSON round trip bit for bit (which is what
makes a resumed or merged run score exactly like an uninterrupted one); a checkpoint cut at any byte
gives back a prefix of what was appended; N shards partition the images and interleave back in order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.common.fileio import write_json_atomic
from harness.errors import HarnessError
from harness.measure.checkpoint import Checkpoint
from harness.measure.shard import Shard, interleave
from harness.models.decoders import Detections
from harness.scoring.coco import CocoGroundTruth, ImageInfo, check_results, load_results, to_results

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# --------------------------------------------------------------------------------------------------
# COCO ground truth


@st.composite
def coco_datasets(draw) -> dict:
    """A valid instances_*.json: unique image and category ids, annotations that refer to them, in any order."""
    image_ids = draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=8, unique=True))
    cat_ids = draw(st.lists(st.integers(1, 1000), min_size=1, max_size=5, unique=True))
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": draw(st.integers(1, 4000)),
               "height": draw(st.integers(1, 4000))} for i in image_ids]
    annotations = []
    for n in range(draw(st.integers(0, 12))):
        ann = {"id": n + 1, "image_id": draw(st.sampled_from(image_ids)), "category_id": draw(st.sampled_from(cat_ids)),
               "bbox": draw(st.lists(st.floats(0, 1000, allow_nan=False), min_size=4, max_size=4))}
        if draw(st.booleans()):
            ann["iscrowd"] = draw(st.integers(0, 1))
        if draw(st.booleans()):
            ann["area"] = draw(st.floats(0, 10**6, allow_nan=False))
        annotations.append(ann)
    categories = [{"id": c, "name": f"class {c}"} for c in cat_ids]
    return {"images": draw(st.permutations(images)), "annotations": annotations, "categories": categories}


@SETTINGS
@given(data=coco_datasets())
def test_loader_reads_every_valid_file(tmp_path: Path, data: dict) -> None:
    """Images come out in id order, each findable by id; optional fields are filled the same way for both engines."""
    path = tmp_path / "instances_val2017.json"
    path.write_text(json.dumps(data))
    gt = CocoGroundTruth(path, tmp_path)
    ids = sorted(i["id"] for i in data["images"])
    assert [i.id for i in gt.images] == ids
    for raw in data["images"]:
        info = gt.image(raw["id"])
        assert (info.file_name, info.width, info.height) == (raw["file_name"], raw["width"], raw["height"])
        assert gt.image_path(info) == tmp_path / raw["file_name"]
    assert gt.categories == {c["id"]: c["name"] for c in data["categories"]}
    for a in gt.dataset["annotations"]:
        assert a["iscrowd"] in (0, 1)
        assert a["area"] >= 0
    described = gt.describe(ids)
    assert described["image_count"] == len(ids)
    assert described["annotation_count"] == len(data["annotations"])
    assert described["split"] == "val2017"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


def load_or_refuse(tmp_path: Path, content: bytes) -> None:
    """The loader's contract: a CocoGroundTruth, or a HarnessError (one line for the user) and nothing else."""
    path = tmp_path / "gt.json"
    path.write_bytes(content)
    try:
        CocoGroundTruth(path)
    except HarnessError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(value=JSON)
def test_loader_refuses_any_json_that_is_not_coco_with_one_message(tmp_path: Path, value: object) -> None:
    load_or_refuse(tmp_path, json.dumps(value).encode())


@SETTINGS
@given(content=st.binary(max_size=64))
def test_loader_refuses_any_bytes_with_one_message(tmp_path: Path, content: bytes) -> None:
    load_or_refuse(tmp_path, content)


FIELDS = [("images", "id"), ("images", "width"), ("images", "height"), ("annotations", "bbox"),
          ("annotations", "image_id"), ("categories", "id")]


@SETTINGS
@given(data=coco_datasets(), where=st.sampled_from(FIELDS), bad=JSON)
@example(data={"images": [{"id": 1, "file_name": "a.jpg", "width": 1, "height": 1}], "annotations": [],
               "categories": [{"id": 1, "name": "a"}]}, where=("images", "id"), bad="abc")
def test_loader_refuses_fields_of_the_wrong_type_with_one_message(tmp_path: Path, data: dict, where: tuple,
                                                                  bad: object) -> None:
    """A valid file with one field of one entry replaced by any JSON value: loaded, or refused in one line."""
    key, name = where
    if data[key]:
        data[key][0][name] = bad
    load_or_refuse(tmp_path, json.dumps(data).encode())


# --------------------------------------------------------------------------------------------------
# The results writer

finite = st.floats(-2.0, 3.0, allow_nan=False, width=32)


@st.composite
def detections(draw) -> tuple[ImageInfo, Detections]:
    n = draw(st.integers(0, 20))
    boxes = np.asarray(draw(st.lists(st.lists(finite, min_size=4, max_size=4), min_size=n, max_size=n)),
                       np.float32).reshape(n, 4)
    scores = np.asarray(draw(st.lists(st.floats(0, 1, width=32), min_size=n, max_size=n)), np.float32)
    cats = np.asarray(draw(st.lists(st.integers(1, 90), min_size=n, max_size=n)), np.int64)
    image = ImageInfo(draw(st.integers(0, 10**12)), "x.jpg", draw(st.integers(1, 5000)), draw(st.integers(1, 5000)))
    return image, Detections(boxes, scores, cats)


@SETTINGS
@given(case=detections(), threshold=st.floats(0, 1))
def test_results_entries_are_official_and_survive_json(case: tuple[ImageInfo, Detections], threshold: float) -> None:
    """One entry per detection at or above the threshold, in the decoder's order, absolute xywh of the
    normalised box; and json.loads(json.dumps(entries)) == entries exactly."""
    image, dets = case
    out = to_results(image, dets, "float", threshold)
    keep = np.flatnonzero(dets.scores >= threshold)
    assert len(out) == len(keep)
    for r, k in zip(out, keep, strict=True):
        assert set(r) == {"image_id", "category_id", "bbox", "score"}
        assert r["image_id"] == image.id and r["category_id"] == int(dets.category_ids[k])
        ymin, xmin, ymax, xmax = dets.boxes[k].astype(np.float64)
        want = [xmin * image.width, ymin * image.height, (xmax - xmin) * image.width, (ymax - ymin) * image.height]
        np.testing.assert_allclose(r["bbox"], want, atol=1e-4 + 1e-9 * image.width * image.height)
        assert r["score"] == round(float(dets.scores[k]), 6)
    assert json.loads(json.dumps(out)) == out


@SETTINGS
@given(case=detections())
def test_nxp_boxes_are_whole_pixels_inside_the_image(case: tuple[ImageInfo, Detections]) -> None:
    image, dets = case
    for r in to_results(image, dets, "nxp_int"):
        x, y, w, h = r["bbox"]
        assert all(float(v).is_integer() for v in r["bbox"])
        assert x >= 1 and y >= 1
        assert x + w <= image.width and y + h <= image.height


@SETTINGS
@given(case=detections())
def test_written_results_read_back_as_written(tmp_path: Path, case: tuple[ImageInfo, Detections]) -> None:
    """Through the atomic writer and the checked reader: the same list, entry for entry."""
    image, dets = case
    out = to_results(image, dets)
    path = tmp_path / "results.json"
    write_json_atomic(path, out)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"images": [{"id": image.id, "file_name": "x.jpg", "width": image.width,
                                               "height": image.height}], "annotations": [],
                                   "categories": [{"id": c, "name": str(c)} for c in range(1, 91)]}))
    gt = CocoGroundTruth(gt_path)
    check_results(out, gt)
    assert load_results(path, gt) == out


RESULT_FIELDS = ("image_id", "category_id", "bbox", "score")


def loaded_or_message(path: Path, gt: CocoGroundTruth) -> object:
    try:
        return [{k: r[k] for k in RESULT_FIELDS} for r in load_results(path, gt)]
    except HarnessError as exc:
        return str(exc)


@SETTINGS
@given(n=st.integers(0, 5), where=st.sampled_from([*RESULT_FIELDS, "extra"]), bad=JSON | st.integers(-10**40, 10**40))
@example(n=1, where="score", bad=True)
@example(n=1, where="bbox", bad=[1, 2, 3, 10**400])
def test_the_typed_results_parser_accepts_and_refuses_what_the_general_reader_does(
        tmp_path: Path, monkeypatch, n: int, where: str, bad: object) -> None:
    """msgspec's one-pass parse (where installed) is only a faster road: on any file, a valid one or one with a
    field of its first entry replaced by any JSON value, the scored fields and every refusal are the same as
    the standard json reader's."""
    import harness.scoring.coco as coco

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps({"images": [{"id": i, "file_name": f"{i}.jpg", "width": 9, "height": 9}
                                              for i in (1, 2)], "annotations": [],
                                   "categories": [{"id": 3, "name": "c"}]}))
    gt = CocoGroundTruth(gt_path)
    results = [{"image_id": 1 + i % 2, "category_id": 3, "bbox": [1, 2.5, 3, 4], "score": 0.5} for i in range(n)]
    if results:
        results[0][where] = bad
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    typed = loaded_or_message(path, gt)
    assert coco._decode_results(path.read_bytes()) is not None or isinstance(typed, str)
    with monkeypatch.context() as without_msgspec:
        without_msgspec.setattr(coco, "_decode_results", lambda raw: None)
        assert typed == loaded_or_message(path, gt)


# --------------------------------------------------------------------------------------------------
# The checkpoint and the shard split

KEY = {"model": "m", "protocol": "p"}


@SETTINGS
@given(images=st.lists(st.tuples(st.integers(0, 10**6), detections()), max_size=6, unique_by=lambda t: t[0]),
       cut=st.floats(0, 1))
def test_checkpoint_cut_anywhere_gives_back_a_prefix(tmp_path: Path, images: list, cut: float) -> None:
    """Cut the file at any byte after the header (a kill mid-write): what reads back is the first k images
    exactly, and appending after it continues a valid checkpoint."""
    path = tmp_path / "c.ckpt.jsonl"
    path.unlink(missing_ok=True)
    written = [(image_id, to_results(info, dets)) for image_id, (info, dets) in images]
    ck = Checkpoint(path, KEY)
    for image_id, results in written:
        ck.append(image_id, results)
    ck.close()
    if not written:
        assert not path.exists()
        return
    data = path.read_bytes()
    header = data.index(b"\n") + 1
    path.write_bytes(data[: header + int(cut * (len(data) - header))])
    back = Checkpoint(path, KEY)
    k = len(back.done)
    assert back.done == written[:k]
    back.append(-1, [])
    back.close()
    assert Checkpoint(path, KEY).done == [*written[:k], (-1, [])]


@SETTINGS
@given(items=st.lists(st.integers(), max_size=50), count=st.integers(1, 12))
def test_shards_partition_and_interleave_back(items: list[int], count: int) -> None:
    parts = [Shard(i, count).select(items) for i in range(1, count + 1)]
    assert sorted(x for p in parts for x in p) == sorted(items)
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert interleave(parts) == items
