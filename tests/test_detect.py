"""`harness detect`: annotated copies and a table of what the model found, on a board install too."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from board import HEAVY, run_board_command
from PIL import Image

from harness.cli import main
from harness.errors import HarnessError
from harness.measure.detect import detect, output_names, table_rows
from harness.measure.draw import class_colour
from harness.models.images import list_images
from harness.models.pipeline import Pipeline
from harness.models.zoo import get_card

DOG, PERSON = 18, 1
GREY = (128, 128, 128)


class FakeHub:
    """A backend with the TF Hub detector's outputs: a dog at 0.9 and a person at 0.25, on any image."""

    def __init__(self) -> None:
        self.batches: list[tuple] = []

    def predict(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append((batch.shape, batch.dtype))
        return {
            "detection_boxes": np.array([[[0.25, 0.20, 0.75, 0.60], [0.10, 0.70, 0.30, 0.90]]], np.float32),
            "detection_scores": np.array([[0.9, 0.25]], np.float32),
            "detection_classes": np.array([[DOG, PERSON]], np.float32),
            "num_detections": np.array([2.0], np.float32),
        }


def hub_pipeline(backend: FakeHub) -> Pipeline:
    """The TF Hub card's pipeline (prepare, decode) around the fake backend."""
    card = get_card("mb3-centernet-hub")
    return Pipeline(card, backend, card.default_protocol)  # type: ignore[arg-type]


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    d = tmp_path / "in"
    d.mkdir()
    paths = []
    for name, (w, h) in (("a.png", (400, 200)), ("b.png", (200, 300))):
        Image.new("RGB", (w, h), GREY).save(d / name)
        paths.append(d / name)
    return paths


def test_detect_writes_annotated_copies_with_the_boxes_above_the_display_threshold(tmp_path, images):
    backend = FakeHub()
    out = detect(hub_pipeline(backend), images, tmp_path / "out", score_threshold=0.3, fmt="png")
    assert backend.batches == [((1, 200, 400, 3), np.uint8), ((1, 300, 200, 3), np.uint8)]  # any-size uint8 input
    first = out["images"][0]
    assert first["annotated"] == str(tmp_path / "out" / "a.mb3-centernet-hub.png")
    assert first["detections_total"] == 2
    assert [(d["name"], d["score"]) for d in first["detections"]] == [("dog", 0.9)]  # 0.25 is only hidden
    assert first["detections"][0]["bbox"] == pytest.approx([80, 50, 160, 100])  # x, y, w, h in pixels
    pic = np.asarray(Image.open(first["annotated"]))
    assert pic.shape == (200, 400, 3)
    assert tuple(pic[100, 80]) == class_colour(DOG) and tuple(pic[100, 239]) == class_colour(DOG)  # left, right
    assert tuple(pic[100, 160]) == GREY  # inside the dog's box
    assert not np.all(pic == class_colour(PERSON), axis=2).any()  # the 0.25 person is not drawn


def test_a_lower_threshold_shows_more_and_the_table_lists_every_shown_box(tmp_path, images):
    out = detect(hub_pipeline(FakeHub()), images, tmp_path / "out", score_threshold=0.2)
    rows = table_rows(out)
    assert [(r[0], r[1], r[2]) for r in rows] == [("a.png", "dog", "0.900"), ("a.png", "person", "0.250"),
                                                  ("b.png", "dog", "0.900"), ("b.png", "person", "0.250")]
    assert rows[1][3:] == ("280.0", "20.0", "360.0", "60.0")  # corners in pixels of a.png (400 x 200)
    pic = np.asarray(Image.open(out["images"][0]["annotated"]))
    assert np.all(pic == class_colour(PERSON), axis=2).any()


def test_an_image_with_nothing_shown_still_gets_a_row(tmp_path, images):
    out = detect(hub_pipeline(FakeHub()), images[:1], None, score_threshold=0.95)
    assert out["images"][0]["annotated"] is None
    assert table_rows(out) == [("a.png", "(none >= 0.95)", None, None, None, None, None)]


def test_bad_threshold_is_a_user_error(images):
    with pytest.raises(HarnessError, match="between 0 and 1"):
        detect(hub_pipeline(FakeHub()), images, None, score_threshold=30)


def test_directories_expand_to_their_images_and_missing_paths_fail(tmp_path, images):
    (images[0].parent / "notes.txt").write_text("not an image")
    assert list_images([images[0].parent]) == images
    with pytest.raises(HarnessError, match="image not found"):
        list_images([tmp_path / "nope.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError, match="no images"):
        list_images([tmp_path / "empty"])


def test_output_names_never_collide():
    names = output_names([Path("x/a.jpg"), Path("y/a.jpg"), Path("a-2.png"), Path("b.png")], "m", "jpg")
    assert names == ["a.m.jpg", "a-2.m.jpg", "a-2-2.m.jpg", "b.m.jpg"]


def test_cli_missing_image_fails_in_one_line_before_loading(tmp_path, capsys):
    assert main(["detect", "mb3-centernet-f32", str(tmp_path / "missing.jpg"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: image not found") and err.count("\n") == 1


def test_cli_bad_threshold_fails_before_the_model_is_looked_for(images, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HARNESS_MIRROR", raising=False)  # loading would fail too, with another message
    assert main(["detect", "mb3-centernet-f32", str(images[0]), "--threshold", "1.5", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "harness: error: --threshold must be between 0 and 1, got 1.5\n"
    assert not list(tmp_path.glob("*.jpg"))


# --------------------------------------------------------------------------------------------------
# The real model on real images


IMAGE = "coco/val2017/000000000139.jpg"  # a living room: a TV on the left, chairs, a vase


@pytest.mark.parametrize("fmt", ["jpg", "png"])
def test_cli_real_model_on_a_mirror_image(mirror, tmp_path, capsys, fmt):
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "det"
    assert main(["detect", "mb3-centernet-f32", str(mirror / IMAGE), "--mirror", str(mirror), "--out", str(out),
                 "--format", fmt]) == 0
    table = capsys.readouterr().out
    assert "000000000139.jpg" in table and " tv " in table
    pic = Image.open(out / f"000000000139.mb3-centernet-f32.{fmt}")
    assert pic.size == (640, 426)
    saved = json.loads((out / "detections_mb3-centernet-f32.json").read_text())
    tv = [d for d in saved["images"][0]["detections"] if d["name"] == "tv"]
    assert tv and all(d["score"] >= 0.3 for d in saved["images"][0]["detections"])
    x, y, w, h = tv[0]["bbox"]  # the TV on the left wall, as the float model sees it
    assert x < 20 and 140 < y < 190 and 120 < w < 170
    edge = np.asarray(pic.convert("RGB"))[int(y + h / 2), round(x + w) - 2].astype(int)  # mid-line
    assert np.abs(edge - class_colour(72)).max() <= (0 if fmt == "png" else 64)  # the TV's right edge; JPEG blurs


def test_cli_json_output_and_no_tensorflow_for_a_tflite_model(mirror, tmp_path):
    """A board has numpy, Pillow and a TFLite runtime: detect must not import TensorFlow or the report stack."""
    pytest.importorskip("ai_edge_litert")
    run = run_board_command(["detect", "mb3-centernet-f32", mirror / IMAGE, "--mirror", mirror, "--out", tmp_path,
                             "--print-json"], watch=(*HEAVY, "pycocotools"))
    assert (run.rc, run.heavy) == (0, [])
    printed = json.loads(run.stdout)
    assert printed["model"] == "mb3-centernet-f32" and printed["score_threshold"] == 0.3
    assert printed == json.loads((tmp_path / "detections_mb3-centernet-f32.json").read_text())
