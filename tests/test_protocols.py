"""Protocols to the pixel: what each seed card's protocols do from image file to results entry, the
Pipeline's geometry (letterboxed boxes mapped back), its variants on one loaded backend, heads by
position, and records written before the protocol held the preprocessing.

Expected values are written by hand from the published recipes, or come from Pillow itself; a value
taken from this code's own output is labelled a regression pin.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import MIRROR_DIR
from synthetic import render_tfod_heads

from harness.errors import HarnessError
from harness.models.backends.base import Backend, ModelOutput, map_outputs
from harness.models.cards import Output
from harness.models.pipeline import Pipeline
from harness.models.preprocess import PRESETS, Preprocess, apply_preprocess
from harness.models.zoo import ZOO, get_card
from harness.records.reader import card_from_record, read_record

DATA = Path(__file__).resolve().parent / "data"
# Written by `harness eval mb3-centernet-f32` at commit bec7c39 (schema 2: input {height, width, dtype, resize}).
V2_RECORD = DATA / "eval_record_v2_mb3-centernet-f32.json"


class FakeBackend(Backend):
    """Answers fixed heads and keeps the last batch it was given (no runtime needed)."""

    name = "fake"
    takes = "nothing"

    def __init__(self, heads: dict[str, np.ndarray]) -> None:
        super().__init__("fake.model", {}, None)  # type: ignore[arg-type]
        self.heads, self.batches = heads, []

    @classmethod
    def opens(cls, path):
        return False

    @classmethod
    def model_input(cls, path):
        return None

    def load(self):
        pass

    def set_input(self, batch):
        self.batches.append(batch)

    def invoke(self):
        pass

    def read_outputs(self):
        return self.heads

    def describe(self):
        return {"backend": self.name}


# --------------------------------------------------------------------------------------------------
# The seed cards' protocols and baselines


def test_nxp_cards_replay_nxp_load_image_and_the_tf2_zoo_config():
    """'nxp': cv2.imread (EXIF applied), cv2.resize INTER_LINEAR, stretched, float32 0..255, NMS decode,
    integer boxes. 'tfod': keep_aspect_ratio_resizer 512 with pad_to_max_dimension (TF1 bilinear, zero
    padding), max-pool peaks. 'tfod-stretch': fixed_shape_resizer 512x512 (TF1 bilinear)."""
    for name in ("centernet-mobilenetv2-fpn-512-f32", "centernet-mobilenetv2-fpn-512-int8"):
        card = get_card(name)
        nxp = card.preprocess("nxp")
        assert (nxp.height, nxp.width, nxp.resize, nxp.aspect, nxp.exif, nxp.channels, nxp.dtype) == \
            (512, 512, "cv2-linear", "stretch", True, "rgb", "float32")
        assert tuple(nxp.mean) == (0, 0, 0) and tuple(nxp.std) == (1, 1, 1)
        assert card.protocol("nxp").box_convention == "nxp_int"
        assert card.decoder_settings("nxp")["peaks"] == "nms" and card.decoder_settings("nxp")["nms_iou"] == 0.5
        tfod = card.preprocess("tfod")
        assert (tfod.resize, tfod.aspect, tfod.pad_value, tfod.exif) == ("tf1-bilinear", "letterbox", 0.0, False)
        assert card.decoder_settings("tfod")["peaks"] == "maxpool"
        stretch = card.preprocess("tfod-stretch")
        assert (stretch.resize, stretch.aspect) == ("tf1-bilinear", "stretch")
        assert card.decoder_settings("tfod-stretch")["peaks"] == "maxpool"
    # 23.4 is the TF2 zoo's own (letterboxed) evaluation; 17.2 is NXP's evaluate.py (stretched by load_image).
    assert get_card("centernet-mobilenetv2-fpn-512-f32").baseline.protocol == "tfod"
    assert get_card("centernet-mobilenetv2-fpn-512-int8").baseline.protocol == "nxp"


def test_mb3_protocol_is_the_model_cards_pillow_stretch():
    """MODEL_CARD.md: PIL resize((512, 512), BILINEAR) of the RGB image, float32 0..255, no EXIF rotation."""
    for suffix in ("f32", "int8", "16x8"):
        pp = get_card(f"mb3-centernet-{suffix}").preprocess()
        assert (pp.height, pp.width, pp.resize, pp.aspect, pp.exif, pp.channels, pp.dtype) == \
            (512, 512, "pillow-bilinear", "stretch", False, "rgb", "float32")
    hub = get_card("mb3-centernet-hub").preprocess()
    assert (hub.height, hub.width, hub.dtype) == (None, None, "uint8")


def _docs() -> str:
    paths = [MIRROR_DIR.parent / "docs" / "design.md", MIRROR_DIR / "models" / "mb3-centernet" / "MODEL_CARD.md"]
    if not all(p.is_file() for p in paths):
        pytest.skip("docs/design.md and the mirror's MODEL_CARD.md are not beside the mirror")
    return "\n".join(" ".join(p.read_text().split()) for p in paths)


def _cited(quote: str) -> list[str]:
    """The fragments a quote cites after `models.md:` (the repository's docs/models.md)."""
    return re.findall(r"models\.md: ([^;\"]+?)(?:;|$)", quote)


@pytest.mark.parametrize("name", sorted(n for n, c in ZOO.items() if c.baseline))
def test_every_baseline_quotes_its_source_and_invents_nothing(name):
    """Each baseline quotes the passage that gives its split and protocol; every quoted fragment (between
    double quotes, or cited from docs/models.md) is in the project's design notes (../shared/docs/design.md,
    the source the figures were taken from) or the mirror's model card."""
    quote = get_card(name).baseline.quote
    assert quote, f"{name} has no quote"
    docs = _docs()
    fragments = re.findall(r'"([^"]+)"', quote) + _cited(quote)
    assert fragments, quote
    for frag in fragments:
        assert " ".join(frag.split()) in docs, frag


@pytest.mark.parametrize("name", sorted(n for n, c in ZOO.items() if c.baseline and "models.md:" in c.baseline.quote))
def test_what_a_baseline_cites_from_docs_models_md_is_on_that_page(name):
    page = " ".join((Path(__file__).resolve().parents[1] / "docs" / "models.md").read_text().split())
    for frag in _cited(get_card(name).baseline.quote):
        assert " ".join(frag.split()) in page, f"docs/models.md lacks {frag!r}, which {name}'s baseline cites"


# --------------------------------------------------------------------------------------------------
# The Pipeline's geometry


def _ltrb_heads(y: int, x: int, ltrb: tuple[float, float, float, float]) -> dict[str, np.ndarray]:
    hm = np.zeros((1, 128, 128, 80), np.float32)
    hm[0, y, x, 0] = 0.9
    wh = np.zeros((1, 128, 128, 4), np.float32)
    wh[0, y, x] = ltrb
    return {"heatmap": hm, "wh": wh}


def test_letterboxed_ltrb_boxes_are_mapped_back_to_the_image():
    """A peak at cell (y 40, x 64) with (l, t, r, b) = (32, 16, 32, 48) px is the input box x 224..288,
    y 144..208 of 512. A 640x480 image letterboxed to 512 fills the top 384 rows, so in the image the box
    is y 144/384..208/384, x 224/512..288/512; the padding rows hold 0."""
    pipe = Pipeline(get_card("mb3-centernet-f32"), FakeBackend(_ltrb_heads(40, 64, (32, 16, 32, 48))), "native")
    letterbox = pipe.variant(preprocess=Preprocess(512, 512, "pillow-bilinear", "letterbox"))
    image = np.full((480, 640, 3), 200, np.uint8)
    det = letterbox.detect(image)
    np.testing.assert_allclose(det.boxes[0], [144 / 384, 224 / 512, 208 / 384, 288 / 512], rtol=1e-6)
    batch = letterbox.backend.batches[-1]
    assert batch.shape == (1, 512, 512, 3)
    assert (batch[0, :384] == 200).all() and (batch[0, 384:] == 0).all()
    # The stretched pipeline on the same backend: the box stays normalised to the input.
    np.testing.assert_allclose(pipe.detect(image).boxes[0], [144 / 512, 224 / 512, 208 / 512, 288 / 512], rtol=1e-6)


def test_tfod_decoder_normalises_by_the_true_shape_under_tfod():
    """'tfod' letterboxes a 333x500 (portrait) image into 512 rows x 341 columns (500 -> 512: x1.024,
    333 * 1.024 = 340.99 -> 341). Heads holding the box where the letterboxed image has it decode to the
    box in the image (the TF OD API divides by the true shape)."""
    box = (0.30, 0.35, 0.80, 0.85)
    in_input = (box[0], box[1] * 341 / 512, box[2], box[3] * 341 / 512)
    heads = render_tfod_heads([(43, in_input)])
    card = get_card("centernet-mobilenetv2-fpn-512-f32")
    pipe = Pipeline(card, FakeBackend(heads), "tfod")
    prepared = pipe.prepare(np.zeros((500, 333, 3), np.uint8))
    assert (prepared.true_shape, prepared.input_shape, prepared.image_shape) == ((512, 341), (512, 512), (500, 333))
    det = pipe.decode(pipe.predict(prepared), prepared)
    assert det.category_ids[0] == 44
    np.testing.assert_allclose(det.boxes[0], box, atol=1e-5)


def test_a_variant_shares_the_loaded_backend_and_records_what_it_overrode():
    card = get_card("centernet-mobilenetv2-fpn-512-f32")
    backend = FakeBackend(render_tfod_heads([(0, (0.1, 0.1, 0.5, 0.5))]))
    pipe = Pipeline(card, backend, "tfod-stretch", load_s=1.5)
    v = pipe.variant(preprocess=PRESETS["nxp"], decoder_params={"peaks": "nms"})
    assert v.backend is backend and v.protocol == "tfod-stretch" and v.load_s == 1.5
    assert v.decoder_params["peaks"] == "nms" and v.decoder_params["top_k"] == 100
    assert pipe.decoder_params["peaks"] == "maxpool"  # the original is untouched
    assert v.preprocess.resize == "cv2-linear" and pipe.preprocess.resize == "tf1-bilinear"
    block = v.protocol_block()
    assert block["name"] == "tfod-stretch" and block["overridden"] == ["preprocess", "decoder_settings"]
    assert block["preprocess"]["resize"] == "cv2-linear" and block["decoder_settings"]["peaks"] == "nms"
    assert "overridden" not in pipe.protocol_block()
    assert pipe.variant().preprocess == pipe.preprocess
    with pytest.raises(HarnessError, match="no setting bogus"):
        pipe.variant(decoder_params={"bogus": 1})
    with pytest.raises(HarnessError, match="true_shape"):
        pipe.variant(decoder_params={"true_shape": (1, 1)})


def test_the_eval_protocol_block_holds_the_whole_path():
    block = get_card("centernet-mobilenetv2-fpn-512-int8").protocol_block("nxp")
    assert block["name"] == "nxp" and block["box_convention"] == "nxp_int" and block["score_threshold"] == 0.0
    assert block["preprocess"]["resize"] == "cv2-linear" and block["preprocess"]["exif"] is True
    assert block["decoder"] == "tfod_centernet" and block["detections_per_image"] == 100
    assert block["decoder_settings"]["class_ids"] == list(range(1, 91))
    assert json.loads(json.dumps(block)) == block


@pytest.mark.parametrize("exif, want", [(True, [210.0, 180.0, 60.0, 80.0]), (False, [280.0, 135.0, 80.0, 60.0])])
def test_a_protocol_that_applies_exif_scales_boxes_by_the_rotated_image(tmp_path, exif, want):
    """An image stored 640x480 with EXIF orientation 6 (rotate 90 clockwise) is 480 wide and 640 tall for
    cv2.imread, and NXP's evaluate.py scales its boxes by that. The box normalised (y 0.28125..0.40625,
    x 0.4375..0.5625) is then x 210, y 180, w 60, h 80 px; read as stored (no EXIF) x 280, y 135, w 80, h 60."""
    from PIL import Image
    from synthetic import ImageSpec, make_coco

    from harness.measure.runner import run_eval
    from harness.scoring.coco import CocoGroundTruth

    root = make_coco(tmp_path / "coco", [ImageSpec(640, 480, [(1, (0.1, 0.1, 0.5, 0.5))])])
    path = root / "val2017" / "000000001001.jpg"
    exif_tag = Image.Exif()
    exif_tag[0x0112] = 6
    with Image.open(path) as im:
        im.load()
    im.save(path, exif=exif_tag)
    gt = CocoGroundTruth(root / "annotations" / "instances_val2017.json", root / "val2017")
    card = get_card("mb3-centernet-f32")
    pipe = Pipeline(card, FakeBackend(_ltrb_heads(40, 64, (32, 16, 32, 48))), "native",
                    preprocess=Preprocess(512, 512, "cv2-linear", exif=exif))
    _, results, _ = run_eval(pipe, gt, gt.images)
    assert results[0]["bbox"] == pytest.approx(want)
    assert pipe.backend.batches[-1].shape == (1, 512, 512, 3)


def test_a_run_with_an_overridden_protocol_is_not_like_for_like():
    from harness.scoring.baseline import compare

    card = get_card("centernet-mobilenetv2-fpn-512-int8")
    dataset = {"split": "val2017", "image_count": 5000}
    assert compare(card, "nxp", dataset, 0.172)["like_for_like"]
    got = compare(card, "nxp", dataset, 0.172, overridden=["preprocess"])
    assert not got["like_for_like"] and got["reasons"] == ["protocol 'nxp' ran with its preprocess overridden"]
    assert got["baseline"]["quote"] == card.baseline.quote


# --------------------------------------------------------------------------------------------------
# Heads by position


def _outs(*names_shapes):
    return [ModelOutput(i, (n,), s) for i, (n, s) in enumerate(names_shapes)]


def test_position_is_a_fallback_after_names_and_only_where_the_shape_fits():
    two = (1, 4, 4, 2)
    wanted = {"scale": Output(("box/scale",), two, position=1), "offset": Output(("box/offset",), two, position=0)}
    nameless = _outs(("Identity", two), ("Identity_1", two))
    rules: dict[str, str] = {}
    assert map_outputs("m", nameless, wanted, by_position=True, rules=rules) == {"scale": 1, "offset": 0}
    assert rules == {"scale": "position", "offset": "position"}
    named = _outs(("box/scale", two), ("box/offset", two))
    rules = {}
    assert map_outputs("m", named, wanted, by_position=True, rules=rules) == {"scale": 0, "offset": 1}
    assert rules == {"scale": "name", "offset": "name"}
    with pytest.raises(HarnessError, match="found by shape"):  # no position allowed: ambiguous by shape
        map_outputs("m", nameless, wanted)
    wrong = _outs(("Identity", (1, 4, 4, 3)), ("Identity_1", two))
    with pytest.raises(HarnessError, match="found by shape"):  # position 0 has another shape: not used
        map_outputs("m", wrong, {"offset": Output(("box/offset",), two, position=0),
                                 "other": Output(("x",), two)}, by_position=True)


# --------------------------------------------------------------------------------------------------
# Records written before the protocol held the preprocessing


def test_a_v2_record_with_the_old_input_loads_as_the_run_it_was(tmp_path):
    """A real schema-2 eval record: its {height, width, dtype, resize: "bilinear"} input reads back as
    Pillow bilinear, stretched, RGB, no EXIF, no scaling: the run it was, pixel for pixel."""
    raw = json.loads(V2_RECORD.read_text())
    assert raw["schema_version"] == 2 and raw["model"]["input"] == {
        "height": 512, "width": 512, "dtype": "float32", "resize": "bilinear"}
    rec = read_record(V2_RECORD, kind="eval")
    card = card_from_record(rec["model"])
    pp = card.preprocess(rec["protocol"]["name"])
    assert (pp.height, pp.width, pp.aspect, pp.exif, pp.channels, pp.dtype) == (512, 512, "stretch", False, "rgb",
                                                                               "float32")
    assert rec["protocol"]["preprocess"]["resize"] == "bilinear"
    assert rec["protocol"]["decoder"] == "ltrb_centernet" and rec["protocol"]["decoder_settings"]["top_k"] == 100
    from PIL import Image

    image = np.random.default_rng(3).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    want = np.asarray(Image.fromarray(image).resize((512, 512), Image.BILINEAR)).astype(np.float32)
    np.testing.assert_array_equal(apply_preprocess(image, pp).batch[0], want)
    assert rec["results"]["stats"]["AP"] == pytest.approx(0.2849679046107261)


@pytest.mark.parametrize("version", [1, 2])
def test_old_records_still_report(tmp_path, version):
    from harness.cli import main

    raw = json.loads(V2_RECORD.read_text())
    if version == 1:
        raw["schema_version"] = 1
        del raw["model"]["family"], raw["model"]["precision"]
    (tmp_path / "records").mkdir()
    (tmp_path / "records" / "old.json").write_text(json.dumps(raw))
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "records"), "--out", str(out), "--gallery", "0", "--quiet"]) == 0
    assert any(out.iterdir())
    rec = read_record(tmp_path / "records" / "old.json")
    assert rec["model"]["family"] == "mb3-centernet" and rec["model"]["input"]["aspect"] == "stretch"


# --------------------------------------------------------------------------------------------------
# mb3-centernet's results do not move


# Regression pin: sha256 over (boxes, scores, category ids) of mb3-centernet-f32 on the mirror's first 8
# val2017 images by id, computed with the harness at bec7c39, before protocols held the preprocessing.
MB3_F32_FIRST8_SHA256 = "33de559631047fd123d27f035142cf8eb135ea04300baa8650799d1b529a6691"


def test_mb3_f32_detections_are_bit_identical_to_before(mirror):
    pytest.importorskip("ai_edge_litert")
    from harness.scoring.coco import CocoGroundTruth

    gt = CocoGroundTruth(mirror / "coco/annotations/instances_val2017.json", mirror / "coco/val2017")
    pipe = Pipeline.open(get_card("mb3-centernet-f32"), mirror)
    h = hashlib.sha256()
    for info in gt.images[:8]:
        prepared = pipe.prepare(pipe.read(gt.image_path(info), (info.width, info.height)))
        det = pipe.decode(pipe.predict(prepared), prepared)
        for a in (det.boxes, det.scores, det.category_ids):
            h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest() == MB3_F32_FIRST8_SHA256


def test_calibration_keeps_its_pillow_filters(tmp_path):
    """Quantization recipes name Pillow filters ("pil-default": no filter argument); the batches are Pillow's."""
    from PIL import Image

    from harness.quantize.calibration import draw_calibration

    image = np.random.default_rng(5).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    shutil.copy(tmp_path / "a.png", tmp_path / "b.png")
    cal = draw_calibration(tmp_path, size=(32, 32), draw="sorted", resize="pil-default")
    batch = next(cal.batches())
    np.testing.assert_array_equal(batch[0], np.asarray(Image.fromarray(image).resize((32, 32))).astype(np.float32))
