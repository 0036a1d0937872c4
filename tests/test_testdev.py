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
    with pytest.raises(HarnessError, match=r"category_id 12, which .* does not define"):
        check_submission([*ok, _entry(700, 12)], info)  # 12 is one of the ten unused COCO ids
    with pytest.raises(HarnessError, match="image 701 has 101 detections; the server takes at most 100"):
        check_submission(ok + [_entry(701)] * 100, info)
    with pytest.raises(HarnessError, match=r"image_id 999, which is not in image_info_test-dev2017\.json"):
        check_submission([*ok, _entry(999)], info)


def test_names_and_missing_files(tmp_path, mirror, capsys):
    assert submission_stem("mb3_centernet") == "detections_test-dev2017_mb3-centernet_results"
    with pytest.raises(HarnessError, match="cannot go into a COCO results file name"):
        submission_stem("a b")
    with pytest.raises(HarnessError, match=r"image_info_test-dev2017\.json not found"):
        load_image_info(tmp_path)
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--split", "test-dev2017"]) == 2
    assert "--split test-dev2017 needs --coco DIR" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# harness fetch: the two test archives, which COCO publishes no hash for, pinned by their first download


@pytest.fixture
def served_test_dev(test_dev, tmp_path, monkeypatch):
    """The official addresses of image_info_test2017.zip and test2017.zip, served on 127.0.0.1 as substitutes
    zipped from our own test-dev, with the repository's manifests (no size, no sha256)."""
    from loopback import HubServer, official_path, zip_folder

    from harness.models import fetch
    from harness.models.datasets import MANIFESTS_ENV

    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)
    server = HubServer()
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    blobs = {}
    for name, member in (("coco-image-info-test2017", "annotations"), ("coco-test2017", "test2017")):
        shutil.copy(REPO_DATASETS / f"{name}.json", manifests)
        url = json.loads((manifests / f"{name}.json").read_text())["archive"]["url"]
        blobs[name] = zip_folder(test_dev / member, member)
        server.files[official_path(url)] = blobs[name]
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(MANIFESTS_ENV, str(manifests))
    monkeypatch.setenv(fetch.URL_BASE_ENV, server.base)
    yield server, blobs
    server.close()


REPO_DATASETS = Path(__file__).resolve().parents[1] / "datasets"


def test_fetch_pins_the_test_archives_on_first_download(served_test_dev, mirror, tmp_path, capsys):
    import hashlib

    server, blobs = served_test_dev
    assert main(["fetch", "coco-image-info-test2017", "coco-test2017", "--quiet"]) == 0
    out = capsys.readouterr().out
    cache = tmp_path / "cache"
    pins = json.loads((cache / "pins.json").read_text())
    for name, blob in blobs.items():
        url = json.loads((REPO_DATASETS / f"{name}.json").read_text())["archive"]["url"]
        assert pins[url]["sha256"] == hashlib.sha256(blob).hexdigest() and pins[url]["bytes"] == len(blob)
        assert f"sha256 {pins[url]['sha256']} pinned by this first download" in out
    root = cache / "coco-test"
    assert (root / "annotations" / "image_info_test-dev2017.json").is_file()
    assert len(list((root / "test2017").glob("*.jpg"))) == len(PICTURES)
    # The fetched root is a test-dev root.
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--coco", str(root), "--split",
                 "test-dev2017", "--max-images", "2", "--quiet", "--out", str(tmp_path / "o")]) == 0
    # Emptied cache, another file served at the same address: refused against the pin, nothing kept.
    shutil.rmtree(root / "test2017")
    url = json.loads((REPO_DATASETS / "coco-test2017.json").read_text())["archive"]["url"]
    from loopback import official_path

    other = bytearray(blobs["coco-test2017"])
    other[len(other) // 2] ^= 0xFF  # same size, other bytes
    server.files[official_path(url)] = bytes(other)
    assert main(["fetch", "coco-test2017", "--quiet"]) == 2
    assert "pin of its first download" in capsys.readouterr().err
    assert not (root / "test2017").exists()
