"""A model given as a path plus options scores exactly like its zoo card."""

from __future__ import annotations

import json

from harness.cli import main


def _ap(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / f"{name}.json"
    assert main(["eval", *args, "--max-images", "4", "--out", str(tmp_path / name), "--json", str(out),
                 "--quiet"]) == 0
    return json.loads(out.read_text())


def test_path_with_decoder_or_like_matches_the_zoo_card(mirror, tmp_path):
    model = str(mirror / "models/mb3-centernet/raw_f32.tflite")
    zoo = _ap(tmp_path, "zoo", "mb3-centernet-f32", "--mirror", str(mirror))
    by_decoder = _ap(tmp_path, "decoder", model, "--decoder", "ltrb_centernet", "--mirror", str(mirror))
    by_like = _ap(tmp_path, "like", model, "--like", "mb3-centernet-f32", "--mirror", str(mirror))
    assert zoo["results"]["stats"]["AP"] > 0.1
    assert by_decoder["results"]["stats"] == zoo["results"]["stats"]
    assert by_like["results"]["stats"] == zoo["results"]["stats"]
    assert by_decoder["backend"]["model_sha256"] == zoo["backend"]["model_sha256"]
    assert zoo["dataset"]["image_count"] == 4


def test_the_raw_savedmodel_evaluates_like_its_tflite_twin(mirror, tmp_path):
    """raw/ is the float SavedModel quantize starts from (MODEL_CARD.md: float32 [1,512,512,3], 0..255), and
    raw_f32.tflite its float conversion: the same network, so the same AP on the same images. Borrowing the
    .tflite card (--like) or naming the decoder must give the SavedModel backend and its own float input."""
    raw = str(mirror / "models/mb3-centernet/raw")
    args = ("--mirror", str(mirror), "--max-images", "8")
    zoo = _ap(tmp_path, "zoo8", "mb3-centernet-f32", *args)
    by_like = _ap(tmp_path, "raw_like", raw, "--like", "mb3-centernet-f32", *args)
    by_decoder = _ap(tmp_path, "raw_decoder", raw, "--decoder", "ltrb_centernet", *args)
    for rec in (by_like, by_decoder):
        assert rec["backend"]["backend"] == "savedmodel"
        assert rec["model"]["input"]["dtype"] == "float32" and rec["model"]["input"]["height"] == 512
        assert rec["dataset"]["image_ids_sha256"] == zoo["dataset"]["image_ids_sha256"]
        assert abs(rec["results"]["stats"]["AP"] - zoo["results"]["stats"]["AP"]) <= 0.005
    assert zoo["results"]["stats"]["AP"] > 0.1
