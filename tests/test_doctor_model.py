"""`harness doctor MODEL`: a mutation table on the real mb3-centernet network.

Each planted fault is a model the test builds around the mirror's raw SavedModel (the same weights as
mb3-centernet-f32) or a copy of mirror images, with the fault inside: a model that expects BGR, one that
expects pixels in [0,1], one whose class channels are shifted by one (a label map read with an offset), and
images stored upside down with an EXIF orientation tag. The doctor must name the fault as its top finding,
and the corrected AP must be within 0.005 of the clean network's AP on the same images (`harness eval` of
mb3-centernet-f32, an outside measurement for the doctor). A clean model must raise no finding worth
0.5 AP points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import import_tf

from harness.cli import main
from harness.records.reader import read_record

IMAGES = 48
TOLERANCE = 0.005
pytestmark = pytest.mark.slow


def _wrap_raw(mirror: Path, out: Path, fault: str) -> Path:
    """The raw SavedModel behind a fault: its serving signature keeps the names `images`, `heatmap`, `wh`."""
    tf = import_tf()
    raw = tf.saved_model.load(str(mirror / "models/mb3-centernet/raw"))
    serve = raw.signatures["serving_default"]

    class Faulty(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.raw = raw

        @tf.function(input_signature=[tf.TensorSpec([1, 512, 512, 3], tf.float32, name="images")])
        def __call__(self, images):
            if fault == "bgr":  # the model was trained on BGR: RGB input reaches it reversed
                images = images[..., ::-1]
            elif fault == "unit-range":  # the model was trained on [0,1] pixels
                images = images * 255.0
            heads = serve(images=images)
            if fault == "label-shift":  # class k's heat lands in channel k + 1: ids off by one
                heads = {"heatmap": tf.roll(heads["heatmap"], shift=1, axis=3), "wh": heads["wh"]}
            return {"heatmap": tf.identity(heads["heatmap"], name="heatmap"), "wh": tf.identity(heads["wh"], name="wh")}

    module = Faulty()
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.__call__})
    return out


def _coco_upside_down(mirror: Path, root: Path, ids: list[int]) -> Path:
    """The first images stored rotated by 180 degrees, with EXIF orientation 3 saying how to show them.

    PNG keeps the decoded pixels exactly (a JPEG re-encode would not), so reading them with the orientation
    applied gives the mirror's own pixels back, and the annotations stay as they are.
    """
    from PIL import Image

    gt = json.loads((mirror / "coco/annotations/instances_val2017.json").read_text())
    keep = set(ids)
    gt["images"] = [i for i in gt["images"] if i["id"] in keep]
    gt["annotations"] = [a for a in gt["annotations"] if a["image_id"] in keep]
    (root / "annotations").mkdir(parents=True)
    (root / "annotations/instances_val2017.json").write_text(json.dumps(gt))
    (root / "val2017").mkdir()
    for info in gt["images"]:
        im = Image.open(mirror / "coco/val2017" / info["file_name"]).convert("RGB").rotate(180)
        exif = Image.Exif()
        exif[0x0112] = 3
        im.save(root / "val2017" / info["file_name"], format="PNG", exif=exif)
    return root


def _doctor(tmp_path: Path, name: str, *argv: str) -> dict:
    out = tmp_path / f"{name}.json"
    code = main(["doctor", *argv, "--max-images", str(IMAGES), "--json", str(out)])
    rec = read_record(out, kind="doctor")
    assert code == (1 if rec["findings"] else 0)
    return rec


@pytest.fixture(scope="module")
def clean_ap(mirror, tmp_path_factory) -> float:
    """mb3-centernet-f32 on the same images through `harness eval`: what each correction must reach."""
    tmp = tmp_path_factory.mktemp("clean")
    assert main(["eval", "mb3-centernet-f32", "--mirror", str(mirror), "--max-images", str(IMAGES), "--out",
                 str(tmp), "--json", str(tmp / "eval.json"), "--quiet"]) == 0
    return json.loads((tmp / "eval.json").read_text())["results"]["stats"]["AP"]


@pytest.mark.parametrize("fault, finding", [
    ("bgr", "channel-order"),
    ("unit-range", "pixel-range"),
    ("label-shift", "label-map"),
])
def test_a_planted_model_fault_is_the_top_finding_and_its_fix_restores_ap(mirror, tmp_path, clean_ap, fault, finding):
    model = _wrap_raw(mirror, tmp_path / fault, fault)
    rec = _doctor(tmp_path, fault, str(model), "--like", "mb3-centernet-f32", "--mirror", str(mirror))
    top = rec["findings"][0]
    print(f"\n{fault}: AP {100 * top['ap_before']:.2f} -> {100 * top['ap_after']:.2f} (clean {100 * clean_ap:.2f}), "
          f"top finding {top['id']}, doctor {rec.get('wall_s', 0):.0f} s")
    assert top["id"] == finding, rec["findings"]
    assert abs(top["ap_after"] - clean_ap) <= TOLERANCE
    assert top["ap_before"] < clean_ap - TOLERANCE  # the fault was real


def test_images_with_exif_orientation_are_found_and_read_upright(mirror, tmp_path, clean_ap):
    ids = [i["id"] for i in sorted(json.loads((mirror / "coco/annotations/instances_val2017.json").read_text())
                                   ["images"], key=lambda i: i["id"])][:IMAGES]
    root = _coco_upside_down(mirror, tmp_path / "coco", ids)
    rec = _doctor(tmp_path, "exif", "mb3-centernet-f32", "--coco", str(root), "--mirror", str(mirror))
    top = rec["findings"][0]
    print(f"\nexif: AP {100 * top['ap_before']:.2f} -> {100 * top['ap_after']:.2f} (clean {100 * clean_ap:.2f})")
    assert top["id"] == "exif" and abs(top["ap_after"] - clean_ap) <= TOLERANCE


@pytest.mark.parametrize("name", ["mb3-centernet-f32", "mb3-centernet-int8", "mb3-centernet-hub"])
def test_a_clean_model_raises_no_finding_worth_half_a_point(mirror, tmp_path, name):
    """No false alarms: the mirror's own artifacts under their cards' protocols. The int8 one is bad, but bad
    in its weights: no change of input path or decode rescues it by half a point with confidence, so its one
    findings are that its AP is far below the card's published 25.1 (MODEL_CARD.md) with no cause found, and
    that its junk boxes leave the image (a flag: clipping them rescues nothing)."""
    rec = _doctor(tmp_path, name, name, "--mirror", str(mirror))
    worth = [f for f in rec["findings"] if f["ap_after"] is None or abs(f["ap_after"] - f["ap_before"]) >= 0.005]
    gains = {v["label"]: round(100 * v["ap_gain"], 2) for v in rec["variants"]}
    print(f"\n{name}: AP {100 * rec['ap']:.2f}, variant gains {gains}, {rec['wall_s']:.0f} s")
    if name == "mb3-centernet-int8":
        assert sorted(f["id"] for f in worth) == ["below-expected", "box-impossible"], worth
        assert all(f["ap_after"] is None for f in worth)
        assert "25.1" in worth[0]["evidence"] and "no cause the doctor checks explains it" in worth[0]["evidence"]
    else:
        assert not worth, worth
    assert rec["protocol"]["name"] == "native" and rec["dataset"]["image_count"] == IMAGES
    assert any("image count differs" in r for r in rec["comparison"]["reasons"])
    assert {"channel-order", "exif"} <= {v["id"] for v in rec["variants"]}
    assert np.isfinite(rec["ap"])
