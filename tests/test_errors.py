"""Bad input through the `harness` command: exit status 2 and exactly one line on stderr.

The line starts with `harness: error:` and says what to fix; no traceback reaches the user, and a
run that fails leaves no partial results file behind (results are written atomically, at the end).
Evals pass --quiet so that the progress lines (also on stderr) stay out of the way.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.fetch import MIRROR_ENV

MODEL = "mb3-centernet-f32"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory, with no mirror from the environment."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_user_error(rc: int, err: str, *fragments: str) -> None:
    """Exit 2, one stderr line `harness: error: ...` holding every fragment, no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("harness: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def files_under(path: Path) -> list[Path]:
    """Every file (hidden temporaries included) under `path`; none when it does not exist."""
    return sorted(p for p in path.rglob("*") if not p.is_dir()) if path.exists() else []


def first_images(mirror: Path, n: int) -> list[dict]:
    """The first `n` val2017 images by id: the ones `--max-images n` evaluates."""
    gt = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    return sorted(gt["images"], key=lambda i: i["id"])[:n]


def coco_root(mirror: Path, root: Path, linked: int) -> Path:
    """A COCO root with the mirror's val2017 annotations and links to only the first `linked` images."""
    (root / "annotations").mkdir(parents=True)
    shutil.copyfile(mirror / "coco" / "annotations" / "instances_val2017.json",
                    root / "annotations" / "instances_val2017.json")
    (root / "val2017").mkdir()
    for info in first_images(mirror, linked):
        (root / "val2017" / info["file_name"]).symlink_to(mirror / "coco" / "val2017" / info["file_name"])
    return root


# --------------------------------------------------------------------------------------------------
# eval: images


def test_missing_image(capsys, mirror: Path, tmp_path: Path) -> None:
    """An image listed in the annotations but absent from val2017/ is named, before any model time."""
    root = coco_root(mirror, tmp_path / "coco", linked=2)
    missing = first_images(mirror, 3)[2]["file_name"]
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--coco", root, "--max-images", 3,
                         "--output", tmp_path / "out", "--json", tmp_path / "record.json", "--quiet")
    assert_user_error(rc, err, "image not found", missing)
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "record.json").exists()


def test_file_that_is_not_an_image(capsys, mirror: Path, tmp_path: Path) -> None:
    """A .jpg holding text stops the eval with the file's name, after the images before it ran."""
    root = coco_root(mirror, tmp_path / "coco", linked=2)
    bad = first_images(mirror, 3)[2]["file_name"]
    (root / "val2017" / bad).write_text("this is not a JPEG\n")
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--coco", root, "--max-images", 3,
                         "--output", tmp_path / "out", "--json", tmp_path / "record.json", "--quiet")
    assert_user_error(rc, err, "not a readable image", bad)
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "record.json").exists()


def test_coco_root_that_does_not_exist(capsys, mirror: Path, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--coco", tmp_path / "nowhere", "--quiet")
    assert_user_error(rc, err, "COCO root not found")


def test_coco_root_without_annotations(capsys, mirror: Path, tmp_path: Path) -> None:
    (tmp_path / "coco" / "val2017").mkdir(parents=True)
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--coco", tmp_path / "coco", "--quiet")
    assert_user_error(rc, err, "annotation file not found", "instances_val2017.json")


# --------------------------------------------------------------------------------------------------
# eval: models


def test_file_that_is_not_a_model(capsys, mirror: Path, tmp_path: Path) -> None:
    """A .tflite that is not a flatbuffer is refused at load time, naming the file."""
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"this is not a flatbuffer" * 100)
    rc, _, err = run_cli(capsys, "eval", garbage, "--like", MODEL, "--mirror", mirror, "--max-images", 3,
                         "--output", tmp_path / "out", "--json", tmp_path / "record.json", "--quiet")
    assert_user_error(rc, err, "not a TFLite model", "garbage.tflite")
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "record.json").exists()


def test_model_path_that_does_not_exist(capsys, mirror: Path, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "eval", tmp_path / "missing.tflite", "--like", MODEL, "--mirror", mirror, "--quiet")
    assert_user_error(rc, err, "model not found", "missing.tflite")


def test_model_path_without_a_contract(capsys, mirror: Path, tmp_path: Path) -> None:
    """A bare model path needs --like or --decoder: the error says so."""
    model = tmp_path / "model.tflite"
    model.write_bytes(b"x")
    rc, _, err = run_cli(capsys, "eval", model, "--mirror", mirror, "--quiet")
    assert_user_error(rc, err, "--like", "--decoder")


def test_unknown_zoo_name(capsys, mirror: Path) -> None:
    """An unknown name lists the zoo's names."""
    rc, _, err = run_cli(capsys, "eval", "no-such-model", "--mirror", mirror, "--quiet")
    assert_user_error(rc, err, "unknown model 'no-such-model'", MODEL)


def test_unknown_zoo_name_for_like(capsys, mirror: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"x")
    rc, _, err = run_cli(capsys, "eval", model, "--like", "no-such-card", "--mirror", mirror, "--quiet")
    assert_user_error(rc, err, "unknown model 'no-such-card'")


def test_mirror_that_does_not_exist(capsys, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", tmp_path / "no-mirror", "--quiet")
    assert_user_error(rc, err, "mirror directory not found", "no-mirror")


def test_mirror_from_environment_that_does_not_exist(capsys, tmp_path: Path, monkeypatch) -> None:
    """A stale $HARNESS_MIRROR is named as the culprit."""
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "stale"))
    rc, _, err = run_cli(capsys, "eval", MODEL, "--quiet")
    assert_user_error(rc, err, "mirror directory not found", "$HARNESS_MIRROR")


def test_no_mirror_and_no_coco(capsys) -> None:
    rc, _, err = run_cli(capsys, "eval", MODEL, "--quiet")
    assert_user_error(rc, err, "--coco")


def test_model_not_in_the_mirror(capsys, mirror: Path, tmp_path: Path) -> None:
    """A mirror that lacks the model file (here: a COCO-only mirror) says where it looked."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "coco").symlink_to(mirror / "coco")
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", tmp_path / "m", "--max-images", 1,
                         "--output", tmp_path / "out", "--quiet")
    assert_user_error(rc, err, "not in the mirror", "raw_f32.tflite")
    assert files_under(tmp_path / "out") == []


def test_max_images_below_one(capsys, mirror: Path, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--max-images", 0,
                         "--output", tmp_path / "out", "--quiet")
    assert_user_error(rc, err, "--max-images")


def test_unknown_protocol(capsys, mirror: Path, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--protocol", "nope",
                         "--output", tmp_path / "out", "--quiet")
    assert_user_error(rc, err, "no protocol 'nope'", "native")


# --------------------------------------------------------------------------------------------------
# Annotation files that are not COCO, for eval and score

NOT_COCO = {
    "json-list": (b'[{"id": 1}]', "top level is not an object"),
    "no-images": (b'{"annotations": [], "categories": [{"id": 1, "name": "person"}]}', "no 'images' list"),
    "not-json": (b"image_id,category_id\n1,2\n", "not JSON"),
    "empty-file": (b"", "not JSON"),
    "image-without-size": (b'{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], '
                           b'"categories": [{"id": 1, "name": "person"}]}', "lacks width, height"),
}


@pytest.mark.parametrize("case", NOT_COCO)
def test_eval_with_annotations_that_are_not_coco(capsys, mirror: Path, tmp_path: Path, case: str) -> None:
    content, message = NOT_COCO[case]
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    (root / "annotations" / "instances_val2017.json").write_bytes(content)
    rc, _, err = run_cli(capsys, "eval", MODEL, "--mirror", mirror, "--coco", root, "--output", tmp_path / "out",
                         "--json", tmp_path / "record.json", "--quiet")
    assert_user_error(rc, err, "not a COCO annotation file", message, "instances_val2017.json")
    assert files_under(tmp_path / "out") == []
    assert not (tmp_path / "record.json").exists()


@pytest.mark.parametrize("case", NOT_COCO)
def test_score_with_annotations_that_are_not_coco(capsys, tmp_path: Path, case: str) -> None:
    content, message = NOT_COCO[case]
    (tmp_path / "gt.json").write_bytes(content)
    (tmp_path / "results.json").write_text("[]")
    rc, _, err = run_cli(capsys, "score", "--gt", tmp_path / "gt.json", "--results", tmp_path / "results.json",
                         "--json", tmp_path / "record.json")
    assert_user_error(rc, err, "not a COCO annotation file", message, "gt.json")
    assert not (tmp_path / "record.json").exists()


def test_score_with_missing_annotation_file(capsys, tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("[]")
    rc, _, err = run_cli(capsys, "score", "--gt", tmp_path / "nope.json", "--results", tmp_path / "results.json")
    assert_user_error(rc, err, "annotation file not found", "nope.json")


def test_score_with_a_directory_as_annotations(capsys, tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("[]")
    rc, _, err = run_cli(capsys, "score", "--gt", tmp_path, "--results", tmp_path / "results.json")
    assert_user_error(rc, err, "is a directory")


# --------------------------------------------------------------------------------------------------
# score: results files


@pytest.fixture
def gt_file(mirror: Path) -> Path:
    return mirror / "coco" / "annotations" / "instances_val2017.json"


def detection(image_id: int) -> dict:
    return {"image_id": image_id, "category_id": 1, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.9}


def test_score_with_image_ids_not_in_the_ground_truth(capsys, gt_file: Path, mirror: Path, tmp_path: Path) -> None:
    """Results for images the ground truth does not have (wrong split?) are refused, naming the id."""
    known = first_images(mirror, 1)[0]["id"]
    results = tmp_path / "results.json"
    results.write_text(json.dumps([detection(known), detection(999_999_999)]))
    rc, _, err = run_cli(capsys, "score", "--gt", gt_file, "--results", results, "--json", tmp_path / "record.json")
    assert_user_error(rc, err, "999999999", "instances_val2017.json", "entry 1")
    assert not (tmp_path / "record.json").exists()


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    ('{"annotations": []}', "JSON list"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}]', "entry 0 is not a bbox detection"),
    ('[{"image_id": 1, "category_id": 1, "segmentation": [], "score": 0.5}]', "entry 0 is not a bbox detection"),
], ids=["not-json", "object", "short-bbox", "segm"])
def test_score_with_results_that_are_not_bbox_results(capsys, gt_file: Path, tmp_path: Path,
                                                      content: str, message: str) -> None:
    results = tmp_path / "results.json"
    results.write_text(content)
    rc, _, err = run_cli(capsys, "score", "--gt", gt_file, "--results", results, "--json", tmp_path / "record.json")
    assert_user_error(rc, err, message, "results.json")
    assert not (tmp_path / "record.json").exists()


def test_score_with_missing_results_file(capsys, gt_file: Path, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "score", "--gt", gt_file, "--results", tmp_path / "nope.json")
    assert_user_error(rc, err, "results file not found", "nope.json")


def test_score_with_unknown_engine(capsys, gt_file: Path, mirror: Path, tmp_path: Path) -> None:
    """An unknown engine lists the known ones and writes no record."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps([detection(first_images(mirror, 1)[0]["id"])]))
    rc, _, err = run_cli(capsys, "score", "--gt", gt_file, "--results", results, "--engine", "fastest",
                         "--json", tmp_path / "record.json")
    assert_user_error(rc, err, "unknown engine 'fastest'", "faster", "pycocotools")
    assert files_under(tmp_path) == [results]


def test_score_success_writes_only_the_record(capsys, gt_file: Path, mirror: Path, tmp_path: Path) -> None:
    """The counterpart of the errors above: a good run exits 0, prints nothing on stderr, leaves one file."""
    results = tmp_path / "results.json"
    results.write_text(json.dumps([detection(first_images(mirror, 1)[0]["id"])]))
    rc, out, err = run_cli(capsys, "score", "--gt", gt_file, "--results", results, "--json", tmp_path / "record.json")
    assert (rc, err) == (0, "")
    assert "AP" in out
    assert files_under(tmp_path) == [tmp_path / "record.json", results]
    assert json.loads((tmp_path / "record.json").read_text())["results"]["detection_count"] == 1


@pytest.mark.parametrize("value", [0, -1])
def test_score_max_images_below_one(capsys, gt_file: Path, mirror: Path, tmp_path: Path, value: int) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps([detection(first_images(mirror, 1)[0]["id"])]))
    rc, _, err = run_cli(capsys, "score", "--gt", gt_file, "--results", results, "--max-images", value,
                         "--json", tmp_path / "record.json")
    assert_user_error(rc, err, "--max-images")
    assert not (tmp_path / "record.json").exists()
