"""`harness doctor MODEL`: the mutation table, continued, for the findings the real network cannot plant.

tests/test_doctor_model.py plants channel-order, pixel-range, label-map and exif faults in the real
mb3-centernet network. The other finding ids need a model whose fault is known by construction, so each
test here builds a synthetic NXP-contract model (tests/synthetic.py) and a synthetic COCO root whose ground
truth the model answers exactly when it is run the right way:

  resize      heads right for letterboxed 4:3 images, run under the stretched protocol 'tfod-stretch';
  decode      heads whose peaks are two-cell plateaus (NXP's published decode is box NMS, which keeps one
              cell; 3x3 max-pool keeps both, one a duplicate), run under max-pool peaks ('tfod-stretch');
  int8-input  a full-integer model calibrated for q = pixel - 128 whose input tensor declares another
              scale and zero point, run under its card's protocol ('nxp').

For each, the doctor must name the fault as its top finding, the planted AP must be really worse, and the
corrected AP must be within 0.005 of the clean run: `harness eval` of the model (or of the unedited model)
under the protocol it was made for, a measurement taken outside the doctor. A clean synthetic model must
raise no finding worth 0.5 AP points.

Each test prints a row `planted-fault ID: AP planted -> corrected (clean C), doctor S s` for the table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import (
    ImageSpec,
    declare_input_quantization,
    make_coco,
    make_nxp_gated_int8_tflite,
    make_nxp_heads_tflite,
    plateau_heads,
    render_tfod_heads,
    trained_background,
)

from harness.analyse.doctor.findings import ALARM
from harness.cli import main
from harness.records.reader import read_record

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

TOLERANCE = 0.005
F32, INT8 = "centernet-mobilenetv2-fpn-512-f32", "centernet-mobilenetv2-fpn-512-int8"

# Three objects per image, apart from each other (class-agnostic NMS at IoU 0.5 must not merge them) and large
# enough that NXP's whole-pixel boxes keep IoU > 0.95 with the ground truth: (official = label-map id, box).
OBJECTS = (
    (1, (0.30, 0.06, 0.78, 0.42)),  # person
    (18, (0.40, 0.52, 0.92, 0.94)),  # dog
    (44, (0.04, 0.50, 0.34, 0.74)),  # bottle
)
# Sizes of val2017 images: landscape, portrait and in between (the stretched protocols fit any of them).
MIXED_SIZES = ((640, 480), (500, 375), (333, 500), (480, 640), (640, 427), (427, 640), (612, 612), (500, 333),
               (640, 360), (375, 500), (640, 512), (512, 640), (600, 400), (400, 600), (560, 420), (420, 560))
# 4:3 images of different sizes: each letterboxes to the same 384x512 content in the 512x512 input
# (harness.models.preprocess.letterbox_size), so one set of heads is right for all of them.
FOUR_THREE = ((640, 480), (320, 240), (800, 600), (480, 360), (1024, 768), (400, 300), (560, 420), (720, 540),
              (160, 120), (240, 180), (960, 720), (880, 660), (600, 450), (680, 510), (520, 390), (440, 330))
LETTERBOX_CONTENT = (384, 512)
# The int8 fault: the input tensor declares scale 0.25, zero point 0 (q = 4 * pixel), while the graph was
# calibrated for scale 1, zero point -128. No pixel-range variant turns the declared quantization into
# q = pixel - 128 (that would need a std of 4 and a mean of 128), so only the int8-input variant can fix it.
DECLARED = (0.25, 0)


@pytest.fixture(autouse=True)
def _no_mirror(monkeypatch):
    """Every model and image comes from the test's own files, never from a mirror."""
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)


def class_indices(objects) -> list[tuple[int, tuple[float, ...]]]:
    """(official id, box) -> (label-map class index, box): the NXP heads' channel is id - 1."""
    return [(category_id - 1, box) for category_id, box in objects]


def in_letterbox(box, content_hw, side: int = 512) -> tuple[float, ...]:
    """A box normalised to the image -> normalised to the square input whose top-left holds the image."""
    th, tw = content_hw
    ymin, xmin, ymax, xmax = box
    return ymin * th / side, xmin * tw / side, ymax * th / side, xmax * tw / side


def coco(root: Path, sizes) -> Path:
    return make_coco(root, [ImageSpec(w, h, OBJECTS) for w, h in sizes])


def harness_eval_ap(model: Path, like: str, root: Path, out: Path, protocol: str) -> float:
    """`harness eval MODEL --like LIKE --coco ROOT --protocol P`, which must succeed; its AP."""
    rc = main(["eval", str(model), "--like", like, "--coco", str(root), "--protocol", protocol, "--out",
               str(out / "det"), "--json", str(out / "eval.json"), "--quiet"])
    assert rc == 0
    record = json.loads((out / "eval.json").read_text())
    assert record["protocol"]["name"] == protocol
    return record["results"]["stats"]["AP"]


def doctor(model: Path, like: str, root: Path, out: Path, *extra: str) -> dict:
    """`harness doctor MODEL --like LIKE --coco ROOT ... --json OUT` on every image; its record.

    Exit 1 exactly when a finding is worth ALARM (0.5 AP points) or is a flag, else 0.
    """
    path = out / "doctor.json"
    code = main(["doctor", str(model), "--like", like, "--coco", str(root), "--max-images", "1000",
                 "--json", str(path), *extra])
    rec = read_record(path, kind="doctor")
    alarms = [f for f in rec["findings"] if f["ap_after"] is None or abs(f["ap_after"] - f["ap_before"]) >= ALARM]
    assert code == (1 if alarms else 0)
    return rec


def assert_top_finding(rec: dict, finding: str, label: str, clean_ap: float) -> dict:
    """The planted fault is the top finding, by the expected variant; it restores the clean AP; the fault was real."""
    assert rec["findings"], f"no finding; variant gains {[(v['label'], v['ap_gain']) for v in rec['variants']]}"
    top = rec["findings"][0]
    print(f"\nplanted-fault {finding}: AP {top['ap_before']:.4f} -> {top['ap_after']:.4f} (clean {clean_ap:.4f}), "
          f"doctor {rec['wall_s']:.1f} s; top finding {top['id']}: {top['evidence']}")
    assert top["id"] == finding, rec["findings"]
    assert top["evidence"].startswith(label + ":"), top["evidence"]
    assert top["ap_before"] == pytest.approx(rec["ap"], abs=1e-12)
    assert abs(top["ap_after"] - clean_ap) <= TOLERANCE
    assert top["ap_before"] < clean_ap - 10 * TOLERANCE  # the fault was real, not noise
    return top


# --------------------------------------------------------------------------------------------------
# resize: a letterbox model stretched


@pytest.fixture(scope="module")
def letterbox_model(tmp_path_factory) -> tuple[Path, Path]:
    """A float32 NXP-contract model whose heads hold OBJECTS where a letterboxed 4:3 image has them, and its COCO."""
    d = tmp_path_factory.mktemp("letterbox")
    heads = trained_background(render_tfod_heads(
        [(c, in_letterbox(box, LETTERBOX_CONTENT)) for c, box in class_indices(OBJECTS)], blob=4.0))
    return make_nxp_heads_tflite(d / "letterbox.tflite", heads), coco(d / "coco", FOUR_THREE)


def test_a_letterbox_model_stretched_is_found_as_resize(letterbox_model, tmp_path):
    model, root = letterbox_model
    clean = harness_eval_ap(model, F32, root, tmp_path, "tfod")
    assert clean == pytest.approx(1.0, abs=1e-9)  # what the heads were made for
    rec = doctor(model, F32, root, tmp_path, "--protocol", "tfod-stretch")
    assert rec["protocol"]["preprocess"]["aspect"] == "stretch"
    assert_top_finding(rec, "resize", "letterbox instead of stretch", clean)


# --------------------------------------------------------------------------------------------------
# decode: max-pool peaks where the model's published decode is box NMS


@pytest.fixture(scope="module")
def plateau_model(tmp_path_factory) -> tuple[Path, Path]:
    """A float32 NXP-contract model whose objects are two-cell plateaus (normalised to the stretched input)."""
    d = tmp_path_factory.mktemp("plateau")
    return (make_nxp_heads_tflite(d / "plateau.tflite", trained_background(plateau_heads(class_indices(OBJECTS)))),
            coco(d / "coco", MIXED_SIZES))


def test_duplicate_peaks_under_maxpool_are_found_as_decode(plateau_model, tmp_path):
    """The clean run is the model under NXP's published protocol 'nxp' (top 100, box NMS 0.5). The doctor starts
    from 'tfod-stretch', which differs from 'nxp' in the decode and also in reading (no EXIF), resizing
    (TF1 bilinear, not cv2) and boxes (float, not NXP's whole pixels); its decode variant changes only the
    peaks, so the corrected run keeps float boxes. The heads are the same for any pixels, and the boxes are
    large enough that whole pixels keep IoU > 0.95: both conventions score AP 1.0 when every object is found
    once, so the 'nxp' run is a fair clean reference for the corrected one."""
    model, root = plateau_model
    (tmp_path / "nxp").mkdir()
    clean = harness_eval_ap(model, F32, root, tmp_path / "nxp", "nxp")
    assert clean == pytest.approx(1.0, abs=1e-9)
    (tmp_path / "doctor").mkdir()
    rec = doctor(model, F32, root, tmp_path / "doctor", "--protocol", "tfod-stretch")
    assert rec["protocol"]["decoder"]["peaks"] == "maxpool"
    assert_top_finding(rec, "decode", "nms peaks", clean)


# --------------------------------------------------------------------------------------------------
# int8-input: a declared input quantization the graph was not calibrated for


@pytest.fixture(scope="module")
def int8_models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """The gated full-integer model as calibrated (q = pixel - 128), the same file declaring DECLARED, a COCO."""
    d = tmp_path_factory.mktemp("int8")
    heads = trained_background(render_tfod_heads(class_indices(OBJECTS), blob=4.0))
    clean = make_nxp_gated_int8_tflite(d / "centernet_int8.tflite", heads)
    planted = declare_input_quantization(clean, d / "centernet_int8_declared.tflite", *DECLARED)
    return clean, planted, coco(d / "coco", MIXED_SIZES[:12])  # 12 images: int8 runs are slower


def test_the_planted_int8_model_differs_from_the_clean_one_only_in_what_its_input_declares(int8_models):
    """The construction, checked on the runtime itself: both files give the same heads, to the bit, for the
    same int8 bytes q = pixel - 128 (the edit changed no computation), and the edited file's heads are all 0
    (its gate closed) for the bytes its own declaration makes of the same pixels."""
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    clean_model, planted, _ = int8_models
    pixels = np.random.default_rng(7).integers(0, 256, (1, 512, 512, 3)).astype(np.float32)

    def heads(path: Path, q: np.ndarray) -> tuple[tuple, np.ndarray]:
        it = Interpreter(model_path=str(path))
        it.allocate_tensors()
        d = it.get_input_details()[0]
        it.set_tensor(d["index"], np.clip(q, -128, 127).astype(np.int8))
        it.invoke()
        runner_keys = it.get_signature_runner().get_output_details()
        return d["quantization"], it.get_tensor(runner_keys["output_4"]["index"])  # object_center

    clean_quant, clean_heads = heads(clean_model, pixels - 128)
    planted_quant, planted_heads = heads(planted, pixels - 128)
    assert clean_quant == (1.0, -128) and planted_quant == DECLARED
    np.testing.assert_array_equal(planted_heads, clean_heads)
    assert clean_heads.max() > 7  # the objects' centres (logit 8, less int8 rounding)
    scale, zero_point = DECLARED
    _, declared_heads = heads(planted, np.round(pixels / scale) + zero_point)
    assert not declared_heads.any()


def test_a_wrongly_declared_int8_input_is_found_as_int8_input(int8_models, tmp_path):
    """The clean run is the unedited file under the card's protocol 'nxp' (its declared quantization is its
    calibration, q = pixel - 128); the doctor runs the edited file under the same protocol. The planted
    model's graph reads every input the harness quantizes with the declared (0.25, 0) as saturated pixels and
    closes its gate (AP 0); the int8-input variant feeds q = pixel - 128, the very bytes of the clean run."""
    clean_model, planted, root = int8_models
    (tmp_path / "clean").mkdir()
    clean = harness_eval_ap(clean_model, INT8, root, tmp_path / "clean", "nxp")
    assert clean > 0.5  # int8 heads move the boxes by a fraction of a cell, no more
    (tmp_path / "doctor").mkdir()
    rec = doctor(planted, INT8, root, tmp_path / "doctor")
    assert rec["protocol"]["name"] == "nxp"
    assert rec["backend"]["input"]["quantization"] == list(DECLARED)
    assert_top_finding(rec, "int8-input", "input quantized as q = pixel - 128 (NXP's formula)", clean)


# --------------------------------------------------------------------------------------------------
# no false alarm


@pytest.mark.parametrize("which", ["letterbox-f32-tfod", "int8-nxp"])
def test_a_clean_synthetic_model_raises_no_finding_worth_half_a_point(request, tmp_path, which):
    """The models above as they were made to be run: the letterbox model under 'tfod', the calibrated int8 model
    under 'nxp'. Variants that break them are expected (and are not findings); none may gain half a point."""
    if which == "letterbox-f32-tfod":
        model, root = request.getfixturevalue("letterbox_model")
        rec = doctor(model, F32, root, tmp_path, "--protocol", "tfod")
    else:
        model, _, root = request.getfixturevalue("int8_models")
        rec = doctor(model, INT8, root, tmp_path)
    gains = {v["label"]: round(100 * v["ap_gain"], 2) for v in rec["variants"]}
    print(f"\nclean {which}: AP {rec['ap']:.4f}, variant gains (points) {gains}, doctor {rec['wall_s']:.1f} s")
    # The synthetic heads draw blobs whose decoded boxes include zero-size ones and share scores, by construction:
    # the doctor rightly flags those two data facts (no AP change to claim on a model that scores 1.0); any other
    # flag, or any fix worth half a point, is a false alarm.
    made_so = {"box-impossible", "scores-tied"}
    worth = [f for f in rec["findings"] if (f["ap_after"] is None and f["id"] not in made_so)
             or (f["ap_after"] is not None and abs(f["ap_after"] - f["ap_before"]) >= ALARM)]
    assert not worth, worth
    assert {"channel-order", "pixel-range", "resize", "exif", "decode"} <= {v["id"] for v in rec["variants"]}
    assert max(gains.values()) < 100 * ALARM
    assert min(gains.values()) < -50  # some variant breaks it: the doctor's runs really differ
