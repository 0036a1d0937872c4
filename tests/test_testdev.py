"""test-dev2017: a run over a small COCO-shaped test-dev of our own writes the file the evaluation server takes.

The server's rules, as its upload and results-format pages state them: results in the COCO results format,
named `detections_test-dev2017_[alg]_results.json` and zipped; results for the images of the split (here:
every listed image has detections); category ids from the dataset; at most 100 detections an image.
The test-dev here: four of the mirror's val2017 pictures under new ids in test2017/, listed by an
image_info_test-dev2017.json with images and categories and no annotations, as the official one is.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.records.schema import read_record_file
from harness.scoring.testdev import check_submission, load_image_info, submission_stem

PICTURES = ("000000000139.jpg", "000000000785.jpg", "000000000802.jpg", "000000005001.jpg")


@pytest.fixture(scope="module")
def test_dev(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    (root / "test2017").mkdir()
    (root / "annotations").mkdir()
    val = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    sizes = {i["file_name"]: (i["width"], i["height"]) for i in val["images"]}
    images = []
    for n, name in enumerate(PICTURES):
        new = f"{n + 1:012d}.jpg"
        shutil.copy(mirror / "coco" / "val2017" / name, root / "test2017" / new)
        images.append({"id": 700 + n, "file_name": new, "width": sizes[name][0], "height": sizes[name][1]})
    info = {"info": {"description": "a small test-dev"}, "images": images, "categories": val["categories"]}
    (root / "annotations" / "image_info_test-dev2017.json").write_text(json.dumps(info))
    return root


def test_a_test_dev_run_writes_the_zipped_results_the_server_takes(mirror, test_dev, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--coco", str(test_dev), "--split",
                 "test-dev2017", "--quiet", "--out", str(out), "--json", str(tmp_path / "rec.json")]) == 0
    printed = capsys.readouterr().out
    assert "AP comes from the server" in printed and "AP " not in printed.replace("AP comes", "")
    archive = out / "detections_test-dev2017_mb3-centernet-f32_results.zip"
    with zipfile.ZipFile(archive) as z:
        assert z.namelist() == ["detections_test-dev2017_mb3-centernet-f32_results.json"]
        results = json.loads(z.read(z.namelist()[0]))
    assert {r["image_id"] for r in results} == {700, 701, 702, 703}
    assert all(set(r) == {"image_id", "category_id", "bbox", "score"} for r in results)
    (rec,) = read_record_file(tmp_path / "rec.json")
    assert rec["kind"] == "submission" and rec["dataset"]["split"] == "test-dev2017"
    sub = rec["submission"]
    assert sub["ap"] is None and "evaluation server" in sub["ap_from"]
    assert sub["checks"]["images"] == 4 and sub["checks"]["detections"] == len(results)
    assert sub["checks"]["most_per_image"] <= 100
    assert not list(out.glob("*.checkpoint*")), "the checkpoint goes once the file is written"


def _entry(image_id: int, category_id: int = 1) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": [1.0, 2.0, 30.0, 40.0], "score": 0.5}


def test_the_server_checks_each_refuse_in_one_line(test_dev):
    info = load_image_info(test_dev)
    ok = [_entry(i) for i in (700, 701, 702, 703)]
    assert check_submission(ok, info)["every_image_present"]
    with pytest.raises(HarnessError, match=r"1 of the 4 images have no detection \(e.g. image 703\)"):
        check_submission(ok[:3], info)
    with pytest.raises(HarnessError, match="category_id 12, which .* does not define"):
        check_submission([*ok, _entry(700, 12)], info)  # 12 is one of the ten unused COCO ids
    with pytest.raises(HarnessError, match="image 701 has 101 detections; the server takes at most 100"):
        check_submission(ok + [_entry(701)] * 100, info)
    with pytest.raises(HarnessError, match="image_id 999, which is not in image_info_test-dev2017.json"):
        check_submission([*ok, _entry(999)], info)


def test_names_and_missing_files(tmp_path, mirror, capsys):
    assert submission_stem("mb3_centernet") == "detections_test-dev2017_mb3-centernet_results"
    with pytest.raises(HarnessError, match="cannot go into a COCO results file name"):
        submission_stem("a b")
    with pytest.raises(HarnessError, match="image_info_test-dev2017.json not found"):
        load_image_info(tmp_path)
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--split", "test-dev2017"]) == 2
    assert "--split test-dev2017 needs --coco DIR" in capsys.readouterr().err
