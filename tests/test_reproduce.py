"""One-command reproduction: `harness eval centernet-resnet50v2-512 --coco auto`, the whole chain, offline.

A loopback server stands in for tfhub.dev and images.cocodataset.org ($HARNESS_URL_BASE sends the
official addresses there). It serves a synthetic SavedModel with the TF Hub CenterNet card's exact
contract (tests/synthetic.py: uint8 [1,H,W,3] at each image's own size in, the TF OD API detection dict
out) as the compressed archive tfhub.dev serves for `?tf-hub-format=compressed`, and val2017.zip /
annotations_trainval2017.zip made of a synthetic COCO whose ground truth is the model's box, with
manifests of their own. The one command must fetch both, verify them, evaluate under the baseline's
protocol and set the result beside the published 29.5: AP 1.0 is known from how the model was built.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from loopback import HubServer, coco_archives, official_path, serve_coco
from synthetic import ImageSpec, make_coco, make_hub_savedmodel

from harness.cli import main
from harness.models import fetch
from harness.models.datasets import MANIFESTS_ENV
from harness.models.fetch import CACHE_ENV, MIRROR_ENV, URL_BASE_ENV
from harness.models.zoo import get_card

pytest.importorskip("tensorflow")

CARD = "centernet-resnet50v2-512"
SIZES = ((640, 480), (500, 375), (333, 500))  # sizes of real val2017 images
BOX, CLASS = (0.20, 0.25, 0.70, 0.80), 18  # a dog


def tar_gz(folder: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(folder, arcname=".")
    return buf.getvalue()


@pytest.fixture(scope="module")
def hub_archive(tmp_path_factory) -> bytes:
    """The synthetic TF Hub detector, compressed as tfhub.dev serves a handle; it answers its box only at
    the images' native sizes, so a harness that resized them first would score 0."""
    return tar_gz(make_hub_savedmodel(tmp_path_factory.mktemp("hub") / "model", BOX, CLASS, native_sizes=SIZES))


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    return make_coco(tmp_path_factory.mktemp("coco"), [ImageSpec(w, h, [(CLASS, BOX)]) for w, h in SIZES])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, hub_archive: bytes, coco: Path):
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)
    s = HubServer()
    monkeypatch.setenv(URL_BASE_ENV, s.base)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(MANIFESTS_ENV, str(tmp_path / "manifests"))
    s.hub[official_path(get_card(CARD).source.url)] = hub_archive
    serve_coco(s, tmp_path / "manifests", *coco_archives(coco), files=len(SIZES))
    yield s
    s.close()


def reproduce(tmp_path: Path, name: str, model: str = CARD) -> int:
    return main(["eval", model, "--coco", "auto", "--quiet", "--out", str(tmp_path / name),
                 "--json", str(tmp_path / f"{name}.json")])


def test_one_command_fetches_verifies_evaluates_and_compares(server: HubServer, tmp_path: Path, coco: Path,
                                                             hub_archive: bytes,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert reproduce(tmp_path, "first") == 0
    out = capsys.readouterr().out
    handle = f"{server.base}/tfhub.dev/tensorflow/centernet/resnet50v2_512x512/1?tf-hub-format=compressed"
    assert f"{CARD}: downloaded {len(hub_archive)} bytes from {handle}, no published sha256; got " \
           f"{hashlib.sha256(hub_archive).hexdigest()} (recorded)" in out
    assert "coco-val2017: downloaded" in out and "coco-annotations-2017: downloaded" in out
    assert "29.5" in out  # the published AP, printed beside the measured one
    record = json.loads((tmp_path / "first.json").read_text())
    assert record["results"]["stats"]["AP"] == pytest.approx(1.0, abs=1e-9)  # the model's box is every GT box
    card = get_card(CARD)
    assert record["protocol"]["name"] == card.baseline.protocol == "tfod"
    comparison = record["comparison"]
    assert comparison["baseline"]["ap"] == 29.5 and comparison["baseline"]["split"] == "test-dev2017"
    assert comparison["measured_ap"] == pytest.approx(100.0)
    assert not comparison["like_for_like"]  # 3 substitute images against 20288 of test-dev
    ann = coco / "annotations" / "instances_val2017.json"
    assert record["dataset"]["annotation_sha256"] == hashlib.sha256(ann.read_bytes()).hexdigest()
    assert record["dataset"]["image_count"] == len(SIZES)
    assert record["backend"]["runtime"] == "tensorflow"

    requests = len(server.requests)
    assert reproduce(tmp_path, "again") == 0
    assert len(server.requests) == requests, "the second run is served from the cache"
    out = capsys.readouterr().out
    assert out.count("already here") == 3
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["results"]["stats"] == record["results"]["stats"]


def test_a_corrupt_data_archive_stops_the_chain_before_any_eval(server: HubServer, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The served val2017.zip is not the one the manifest describes: refused, deleted, nothing evaluated."""
    path = official_path("http://images.cocodataset.org/zips/val2017.zip")
    blob = bytearray(server.files[path])
    blob[len(blob) // 2] ^= 0xFF
    server.files[path] = bytes(blob)
    assert reproduce(tmp_path, "corrupt") == 2
    assert "sha256 mismatch for http://images.cocodataset.org/zips/val2017.zip" in capsys.readouterr().err
    assert not (tmp_path / "corrupt.json").exists()
    assert not list((tmp_path / "cache" / "coco").glob("*val2017*"))


@pytest.mark.parametrize("model", ["centernet-mobilenetv2-fpn-512-int8", "centernet-mobilenetv2-fpn-512-f32"])
def test_seed_cards_no_host_serves_say_so_before_any_download(model: str, server: HubServer, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """NXP's .tflite files are built by its recipe, not served: one line naming the recipe, no data fetched."""
    assert reproduce(tmp_path, "nxp", model) == 2
    err = capsys.readouterr().err
    assert "has no download address" in err and "recipe.sh" in err and err.count("\n") == 1
    assert server.requests == []
