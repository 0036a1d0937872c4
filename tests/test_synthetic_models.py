"""The seed models' contracts, end to end through `harness eval`, with synthetic stand-ins.

The official weights cannot be fetched here, so each seed model is replaced by a model with exactly
its interface (see tests/synthetic.py) whose outputs encode a known box. Run through the same CLI path
as a real model (`harness eval PATH --like ZOO_NAME ...`) on a synthetic COCO whose ground truth is that
box, a correct harness must score AP 1.0: any mistake in input shaping, output mapping, decoding,
class-id mapping or box scaling shows up as a lower AP.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import ImageSpec, make_coco, make_hub_savedmodel, make_nxp_tflite, pixel_xywh

from harness.cli import main
from harness.records.schema import SCHEMA_VERSION
from harness.scoring.evaluator import STAT_KEYS

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

# Sizes of real val2017 images: landscape, another landscape ratio, portrait.
SIZES = ((640, 480), (500, 375), (333, 500))

HUB_BOX, HUB_CLASS = (0.20, 0.25, 0.70, 0.80), 18  # dog
# Centre (70.4, 76.8) in the 128-cell grid: not on a cell boundary, so box/offset matters.
NXP_BOX, NXP_CLASS = (0.30, 0.35, 0.80, 0.85), 44  # bottle: label-map index 43, but index 39 of the 80 classes


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch):
    """Every model and image comes from the test's own files, never from a mirror."""
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)


@pytest.fixture(scope="session")
def hub_model(tmp_path_factory) -> Path:
    return make_hub_savedmodel(tmp_path_factory.mktemp("hub") / "centernet_hub", HUB_BOX, HUB_CLASS,
                               native_sizes=SIZES)


@pytest.fixture(scope="session")
def nxp_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("nxp")
    return {"f32": make_nxp_tflite(d / "centernet_f32.tflite", False, NXP_BOX, NXP_CLASS - 1),
            "int8": make_nxp_tflite(d / "centernet.tflite", True, NXP_BOX, NXP_CLASS - 1)}


def _coco(root: Path, box, category_id: int) -> Path:
    return make_coco(root, [ImageSpec(w, h, [(category_id, box)]) for w, h in SIZES])


@pytest.fixture(scope="session")
def hub_coco(tmp_path_factory) -> Path:
    return _coco(tmp_path_factory.mktemp("coco_hub"), HUB_BOX, HUB_CLASS)


@pytest.fixture(scope="session")
def nxp_coco(tmp_path_factory) -> Path:
    return _coco(tmp_path_factory.mktemp("coco_nxp"), NXP_BOX, NXP_CLASS)


def harness_eval(model: Path, like: str, coco: Path, out: Path, *extra: str) -> tuple[dict, list]:
    """`harness eval MODEL --like LIKE ...`, which must succeed; returns (run record, detections)."""
    rc = main(["eval", str(model), "--like", like, "--coco", str(coco), "--out", str(out / "det"),
               "--json", str(out / "record.json"), "--quiet", *extra])
    assert rc == 0
    record = json.loads((out / "record.json").read_text())
    detections = json.loads(Path(record["detections_file"]).read_text())
    assert Path(record["detections_file"]).parent == out / "det"
    return record, detections


def assert_eval_record(record: dict, coco: Path, runtime: str) -> None:
    """The run record of an eval: versioned, with all 12 stats, per-class AP and what data it saw."""
    assert record["schema_version"] == SCHEMA_VERSION
    assert record["kind"] == "eval"
    stats = record["results"]["stats"]
    assert list(stats) == list(STAT_KEYS)
    assert set(STAT_KEYS) == {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}
    assert all(isinstance(v, float) for v in stats.values())
    assert len(record["results"]["per_class"]) == 80
    dataset = record["dataset"]
    assert dataset["image_count"] == len(SIZES)
    assert dataset["split"] == "val2017"
    ann = coco / "annotations" / "instances_val2017.json"
    assert dataset["annotation_sha256"] == hashlib.sha256(ann.read_bytes()).hexdigest()
    assert record["backend"]["runtime"] == runtime


def assert_top_detection_is_gt(detections: list, coco: Path, category_id: int, tol: float) -> None:
    """Each image's best detection is its ground-truth box, in that image's own pixels."""
    gt = json.loads((coco / "annotations" / "instances_val2017.json").read_text())
    for image in gt["images"]:
        mine = [d for d in detections if d["image_id"] == image["id"]]
        best = max(mine, key=lambda d: d["score"])
        ann = next(a for a in gt["annotations"] if a["image_id"] == image["id"])
        assert best["category_id"] == category_id
        np.testing.assert_allclose(best["bbox"], ann["bbox"], atol=tol)


def test_hub_contract_savedmodel_scores_ap_1_on_images_of_every_size(hub_model, hub_coco, tmp_path):
    """TF Hub CenterNet contract: uint8 [1,H,W,3] at each image's own size, the detection dict out.

    The model's normalised box must come back as each image's own GT box in pixels (640x480, 500x375,
    333x500), with its label-map class id as the category: AP 1.0 and a complete run record. The
    model answers its box only for inputs of those native sizes, so resizing the images would fail.
    """
    record, detections = harness_eval(hub_model, "centernet-resnet50v2-512", hub_coco, tmp_path)
    assert record["results"]["stats"]["AP"] == pytest.approx(1.0, abs=1e-9)
    assert record["results"]["per_class"]["dog"]["AP"] == pytest.approx(1.0, abs=1e-9)
    assert record["results"]["per_class"]["cat"]["AP"] == -1  # no cat in the ground truth: absent, not 0
    assert_eval_record(record, hub_coco, "tensorflow")
    assert record["protocol"]["name"] == "tfod"
    assert len(detections) == 100 * len(SIZES)  # num_detections of each image, all kept
    assert_top_detection_is_gt(detections, hub_coco, HUB_CLASS, tol=1e-3)
    assert {d["image_id"] for d in detections} == {1001, 1002, 1003}


# The preprocessing each stretched protocol must record, written from the code it replays: NXP's load_image
# (cv2.imread applies EXIF, BGR->RGB, cv2.resize 512x512 INTER_LINEAR, fed as float32 0..255) and the TF OD
# API's fixed_shape_resizer (TF1 resize_images bilinear, stretched).
STRETCHED = {
    "nxp": {"height": 512, "width": 512, "resize": "cv2-linear", "aspect": "stretch", "pad_value": 0.0,
            "channels": "rgb", "exif": True, "mean": [0.0] * 3, "std": [1.0] * 3, "dtype": "float32"},
    "tfod-stretch": {"height": 512, "width": 512, "resize": "tf1-bilinear", "aspect": "stretch", "pad_value": 0.0,
                     "channels": "rgb", "exif": False, "mean": [0.0] * 3, "std": [1.0] * 3, "dtype": "float32"},
}


@pytest.mark.parametrize("variant", ["f32", "int8"])
@pytest.mark.parametrize("protocol", ["tfod-stretch", "nxp"])
def test_nxp_contract_tflite_scores_its_box(nxp_models, nxp_coco, tmp_path, variant, protocol):
    """NXP export contract: five raw heads found by signature key, TF OD API decode, both stretched protocols.

    The model's heads hold one box in the stretched input, so each image's GT box comes back only when
    the input is stretched ('tfod' letterboxes: see the letterbox test below).
    float32 scores AP 1.0 under both protocols: under 'nxp' the boxes are truncated to whole pixels,
    which still leaves IoU > 0.95 for this large box. int8 (full-integer, int8 input quantized with the
    tensor's own scale) moves the box by a fraction of a cell and must still score AP >= 0.9.
    """
    like = f"centernet-mobilenetv2-fpn-512-{variant}"
    record, detections = harness_eval(nxp_models[variant], like, nxp_coco, tmp_path, "--protocol", protocol)
    ap = record["results"]["stats"]["AP"]
    if variant == "f32":
        assert ap == pytest.approx(1.0, abs=1e-9)
    else:
        assert ap >= 0.9
    assert record["results"]["stats"]["AP50"] == pytest.approx(1.0, abs=1e-9)
    assert_eval_record(record, nxp_coco, "ai-edge-litert")
    backend = record["backend"]
    assert backend["input"]["dtype"] == ("int8" if variant == "int8" else "float32")
    assert backend["input"]["shape"] == [1, 512, 512, 3]
    assert backend["output_mapping"] == {"object_center": "output_4", "box/scale": "output_3",
                                         "box/offset": "output_2", "extracted_features": "output_1",
                                         "preprocessed_inputs": "output_0"}
    assert record["protocol"]["name"] == protocol
    assert record["protocol"]["preprocess"] == STRETCHED[protocol]
    assert record["protocol"]["decoder"] == "tfod_centernet"
    assert record["protocol"]["decoder_settings"]["peaks"] == ("nms" if protocol == "nxp" else "maxpool")
    if variant == "int8":  # the backend quantizes the float32 0..255 batch with the input tensor's own scale
        quant = record["protocol"]["input_quantization"]
        assert quant["dtype"] == "int8" and quant["scale_zero_point"] == backend["input"]["quantization"]
    else:
        assert record["protocol"]["input_quantization"] is None
    assert_top_detection_is_gt(detections, nxp_coco, NXP_CLASS, tol=1.5 if protocol == "nxp" else 0.5)
    if protocol == "nxp":
        # NXP evaluate.py writes whole pixels; NMS removed the 8 neighbours of the peak.
        assert all(float(v).is_integer() for d in detections for v in d["bbox"])
        assert sum(d["score"] > 0.5 for d in detections) == len(SIZES)


def test_nxp_export_signature_keys_match_the_zoo_card(nxp_models):
    """NXP's reversed tuple becomes signature keys output_0..output_4, which NXP_OUTPUTS relies on.

    Also pins the tensor order that NXP's example.py reads by position (output_details[0] heatmap,
    [2] scale, [4] offset, [3] preprocessed input), so the synthetic export is the same as NXP's.
    """
    from ai_edge_litert.interpreter import Interpreter

    from harness.models.zoo import NXP_OUTPUTS

    for path in nxp_models.values():
        it = Interpreter(model_path=str(path))
        runner = it.get_signature_runner("serving_default")
        keys = {k: tuple(int(s) for s in d["shape"]) for k, d in runner.get_output_details().items()}
        for head, spec in NXP_OUTPUTS.items():
            key = spec.names[1]
            assert keys[key] == spec.shape, head
        by_key = {d["index"]: k for k, d in runner.get_output_details().items()}
        order = [by_key[d["index"]] for d in it.get_output_details()]
        assert (order[0], order[2], order[4], order[3]) == ("output_4", "output_3", "output_2", "output_0")
    # The int8 model computes its heads in int8 and dequantizes them, as NXP's does (nothing folded away).
    it = Interpreter(model_path=str(nxp_models["int8"]))
    int8_heads = {tuple(int(s) for s in t["shape"]) for t in it.get_tensor_details() if t["dtype"] == np.int8}
    assert {(1, 128, 128, 90), (1, 128, 128, 2), (1, 512, 512, 3)} <= int8_heads


def test_model_whose_outputs_do_not_match_its_card_is_one_line_error(nxp_models, nxp_coco, tmp_path, capsys):
    """Borrowing the wrong card (NXP heads read as mb3-centernet's) stops at load time with exit 2.

    One line, `harness: error: ...`, that names the outputs; no traceback and no nonsense mAP.
    """
    rc = main(["eval", str(nxp_models["f32"]), "--like", "mb3-centernet-f32", "--coco", str(nxp_coco),
               "--out", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("harness: error:")
    assert "outputs" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert not list(tmp_path.glob("detections_*.json"))


def test_pixel_xywh_is_coco_absolute_xywh():
    """The builders' box convention: normalised [ymin, xmin, ymax, xmax] to COCO's [x, y, w, h] pixels."""
    assert pixel_xywh((0.25, 0.5, 0.75, 1.0), 640, 480) == [320.0, 120.0, 320.0, 240.0]


def test_annotation_file_without_images_is_one_line_error(nxp_models, tmp_path, capsys):
    """An instances file that lists no images stops with exit 2 and one line, before any model time."""
    coco = make_coco(tmp_path / "coco", [])
    rc = main(["eval", str(nxp_models["f32"]), "--like", "centernet-mobilenetv2-fpn-512-f32", "--coco", str(coco),
               "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("harness: error:") and "no images" in err


# --------------------------------------------------------------------------------------------------
# Letterboxing ('tfod'), NXP's pixels ('nxp'), heads read by position

# The letterboxed content (height, width) in a 512x512 input, by hand: the longer side to 512 and the other
# by the same factor, rounded: 640x480 -> x0.8 -> 384x512; 333x500 (portrait) -> x1.024 -> 512x340.99 -> 512x341.
LETTERBOX = {(640, 480): (384, 512), (333, 500): (512, 341)}


def in_letterboxed_input(box, content_hw) -> tuple[float, ...]:
    """A box normalised to the image -> normalised to the 512x512 input whose top-left holds the image."""
    th, tw = content_hw
    ymin, xmin, ymax, xmax = box
    return ymin * th / 512, xmin * tw / 512, ymax * th / 512, xmax * tw / 512


@pytest.mark.parametrize("size", sorted(LETTERBOX))
def test_letterbox_protocol_maps_boxes_back_to_each_image(tmp_path_factory, tmp_path, size):
    """'tfod' letterboxes (zero padding bottom/right) and decodes with the true shape: a model whose heads
    hold the GT box where the letterboxed image has it scores AP 1.0 on non-square images, each box back
    in its image's own pixels. The same heads read as a stretched input ('tfod-stretch') are off."""
    w, h = size
    d = tmp_path_factory.mktemp("letterbox")
    model = make_nxp_tflite(d / "centernet_f32.tflite", False, in_letterboxed_input(NXP_BOX, LETTERBOX[size]),
                            NXP_CLASS - 1)
    coco = make_coco(d / "coco", [ImageSpec(w, h, [(NXP_CLASS, NXP_BOX)])] * 2)
    like = "centernet-mobilenetv2-fpn-512-f32"
    (tmp_path / "tfod").mkdir()
    record, detections = harness_eval(model, like, coco, tmp_path / "tfod", "--protocol", "tfod")
    assert record["results"]["stats"]["AP"] == pytest.approx(1.0, abs=1e-9)
    assert_top_detection_is_gt(detections, coco, NXP_CLASS, tol=0.5)
    pp = record["protocol"]["preprocess"]
    assert (pp["aspect"], pp["pad_value"], pp["resize"], pp["exif"]) == ("letterbox", 0.0, "tf1-bilinear", False)
    (tmp_path / "stretch").mkdir()
    stretched, _ = harness_eval(model, like, coco, tmp_path / "stretch", "--protocol", "tfod-stretch")
    assert stretched["results"]["stats"]["AP"] < 0.5


def test_nxp_protocol_feeds_the_pixels_of_nxp_load_image(nxp_models, mirror):
    """`--protocol nxp` through the Pipeline (read + prepare) gives the array NXP's load_image fed its model
    (cv2.imread, BGR->RGB, cv2.resize INTER_LINEAR 512x512: the oracle's pre_*.npz), to within 1 grey level."""
    from oracle_paths import oracle_dir

    from harness.models.pipeline import Pipeline
    from harness.models.zoo import card_for_path

    oracles = sorted(oracle_dir("nxp-evaluate-py").glob("pre_*.npz"))
    assert len(oracles) == 6
    card = card_for_path(nxp_models["f32"], like="centernet-mobilenetv2-fpn-512-f32")
    pipe = Pipeline.open(card, protocol="nxp", model_path=nxp_models["f32"])
    worst = []
    for f in oracles:
        want = np.load(f)["image"]
        prepared = pipe.prepare(pipe.read(mirror / "coco" / "val2017" / f"{f.stem.removeprefix('pre_')}.jpg"))
        assert prepared.batch.dtype == np.float32 and prepared.batch.shape == want.shape == (1, 512, 512, 3)
        assert prepared.true_shape == prepared.input_shape == (512, 512)
        worst.append(float(np.abs(prepared.batch - want.astype(np.float32)).max()))
    print(f"\nnxp protocol vs NXP load_image on {len(oracles)} images: max |diff| per image {worst}")
    assert max(worst) <= 1
    assert set(pipe.predict(prepared)) >= {"object_center", "box/scale", "box/offset"}


def test_tflite_without_signature_reads_nxp_heads_by_position(nxp_models, nxp_coco, tmp_path):
    """A .tflite without a signature has no output_N names: the NXP cards fall back to NXP's own rule
    (output_details[0] heatmap, [2] scale, [4] offset), and the record says the heads were read by position."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(nxp_models["f32"]))
    model.signatureDefs = []
    bare = tmp_path / "centernet_nosig.tflite"
    flatbuffer_utils.write_model(model, str(bare))
    assert not Interpreter(model_path=str(bare)).get_signature_list()
    record, detections = harness_eval(bare, "centernet-mobilenetv2-fpn-512-f32", nxp_coco, tmp_path, "--protocol",
                                      "nxp")
    assert record["results"]["stats"]["AP"] == pytest.approx(1.0, abs=1e-9)
    mapping = record["backend"]["output_mapping"]
    for head, position in (("object_center", 0), ("box/scale", 2), ("box/offset", 4)):
        assert mapping[head].startswith(f"by position {position} ("), mapping
    assert_top_detection_is_gt(detections, nxp_coco, NXP_CLASS, tol=1.5)
