"""Bad input through the `harness` command, as one table: every kind of bad input the CLI takes.

Each row builds one bad input in a scratch directory and names the fragments the error must hold. For
every row: exit status 2, exactly one line on stderr starting `harness: error:` that says what to fix,
no traceback, and no output left behind (no detections file, no run record, no temporary file). The
one thing a failed eval may leave is its checkpoint, when images were finished before the bad one: the
message says so, and the same command resumes after them once the input is fixed (tests/test_resume.py).

Images that can be read (grayscale, CMYK, alpha, palette, 16-bit) are converted, not rejected: the
second table. Evals pass --quiet so that progress lines (also on stderr) stay out of the way.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.models.fetch import MIRROR_ENV

MODEL = "mb3-centernet-f32"
MB3_F32 = "models/mb3-centernet/raw_f32.tflite"
CHECKPOINT = f"detections_{MODEL}_native.ckpt.jsonl"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in a scratch directory, with no mirror from the environment, and with Python's own report of
    exceptions raised in __del__ (pytest would hide it; a user sees it on stderr)."""
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "unraisablehook", sys.__unraisablehook__)


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


def coco_root(mirror: Path, root: Path, linked: int, edit: Callable[[dict], None] | None = None) -> Path:
    """A COCO root with the mirror's val2017 annotations (changed by `edit`) and links to the first `linked` images."""
    (root / "annotations").mkdir(parents=True)
    gt = json.loads((mirror / "coco" / "annotations" / "instances_val2017.json").read_text())
    if edit:
        edit(gt)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(gt))
    (root / "val2017").mkdir()
    for info in first_images(mirror, linked):
        (root / "val2017" / info["file_name"]).symlink_to(mirror / "coco" / "val2017" / info["file_name"])
    return root


# --------------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Bad:
    """One kind of bad input: `argv(tmp_path, mirror)` builds it and returns the command line; the error
    line must hold every fragment of `says` ({image} is the file name of the 3rd image by id)."""

    argv: Callable[[Path, Path], list[object]]
    says: tuple[str, ...]
    leaves: tuple[str, ...] = ()  # file names that may stay under out/: a checkpoint of finished images
    env: dict[str, str] = field(default_factory=dict)  # {tmp} is the scratch directory
    known_bug: str | None = None  # a defect outside this files: the row fails until it is fixed


def ev(mirror: Path, *extra: object, n: int = 3) -> list[object]:
    """`harness eval MODEL` over the first n images, with output and record in the scratch directory."""
    return ["eval", MODEL, "--mirror", mirror, "--max-images", n, "--out", "out", "--json", "record.json",
            "--quiet", *extra]


def ev_coco(tmp: Path, mirror: Path, root: Path, *extra: object) -> list[object]:
    return ev(mirror, "--coco", root, *extra)


def with_third_image(content: Callable[[Path], bytes] | None) -> Callable[[Path, Path], list[object]]:
    """A COCO root whose 3rd image is replaced by `content(original)`, or made a directory (None)."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        root = coco_root(mirror, tmp / "coco", linked=2)
        name = first_images(mirror, 3)[2]["file_name"]
        if content is None:
            (root / "val2017" / name).mkdir()
        else:
            (root / "val2017" / name).write_bytes(content(mirror / "coco" / "val2017" / name))
        return ev_coco(tmp, mirror, root)
    return build


def small_jpeg(_: Path) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 30, 200)).save(buf, "JPEG")
    return buf.getvalue()


def with_annotations(content: bytes) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        root = tmp / "coco"
        (root / "annotations").mkdir(parents=True)
        (root / "val2017").mkdir()
        (root / "annotations" / "instances_val2017.json").write_bytes(content)
        return ev_coco(tmp, mirror, root)
    return build


def with_edited_annotations(edit: Callable[[dict], None]) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        return ev_coco(tmp, mirror, coco_root(mirror, tmp / "coco", linked=3, edit=edit))
    return build


def with_model(content: Callable[[Path], bytes], like: str = MODEL) -> Callable[[Path, Path], list[object]]:
    """A model file made from the mirror's real f32 model (empty, cut short, or something else)."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        model = tmp / "model.tflite"
        model.write_bytes(content(mirror / MB3_F32))
        argv = ev(mirror, "--like", like)
        argv[1] = model
        return argv
    return build


def bare_model(*extra: object) -> Callable[[Path, Path], list[object]]:
    """A model path given without --like (and maybe with --decoder)."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        (tmp / "m.tflite").write_bytes(b"x")
        return ["eval", tmp / "m.tflite", *extra, "--mirror", mirror, "--quiet"]
    return build


def coco_root_without_annotations(tmp: Path, mirror: Path) -> list[object]:
    (tmp / "coco" / "val2017").mkdir(parents=True)
    return ev_coco(tmp, mirror, tmp / "coco")


def eval_of(model: str, *extra: object) -> Callable[[Path, Path], list[object]]:
    """`harness eval` of another model name or path ({tmp} is the scratch directory)."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        argv = ev(mirror, *extra)
        argv[1] = model.format(tmp=tmp)
        return argv
    return build


def corrupt_mirror(tmp: Path, mirror: Path) -> list[object]:
    """A mirror whose copy of the model has one byte changed."""
    root = tmp / "m"
    (root / MB3_F32).parent.mkdir(parents=True)
    (root / "coco").symlink_to(mirror / "coco")
    data = bytearray((mirror / MB3_F32).read_bytes())
    data[4096] ^= 1
    (root / MB3_F32).write_bytes(bytes(data))
    return ["eval", MODEL, "--mirror", root, "--max-images", 3, "--out", "out", "--json", "record.json", "--quiet"]


def coco_only_mirror(tmp: Path, mirror: Path) -> list[object]:
    (tmp / "m").mkdir()
    (tmp / "m" / "coco").symlink_to(mirror / "coco")
    return ["eval", MODEL, "--mirror", tmp / "m", "--max-images", 1, "--out", "out", "--quiet"]


def with_checkpoint(content: bytes) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        (tmp / "out").mkdir()
        (tmp / "out" / CHECKPOINT).write_bytes(content)
        return ev(mirror)
    return build


def checkpoint_of_another_run(tmp: Path, mirror: Path) -> list[object]:
    from harness.measure.checkpoint import Checkpoint

    key = {"model": MODEL, "model_sha256": "0" * 64, "protocol": "native"}
    Checkpoint(tmp / "out" / CHECKPOINT, key).append(first_images(mirror, 1)[0]["id"], [])
    return ev(mirror)


def gt_file(content: bytes, command: str = "eval") -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        (tmp / "gt.json").write_bytes(content)
        (tmp / "results.json").write_text("[]")
        return [command, "--gt", tmp / "gt.json", "--results", tmp / "results.json", "--json", "record.json"]
    return build


def detection(image_id: int, category_id: int = 1) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": [10.0, 20.0, 30.0, 40.0], "score": 0.9}


def score_of(results: Callable[[Path], object] | str, *extra: object) -> Callable[[Path, Path], list[object]]:
    """`harness eval --results` of a results file (text, or a list made from the mirror) against the mirror's
    val2017."""
    def build(tmp: Path, mirror: Path) -> list[object]:
        path = tmp / "results.json"
        path.write_text(results if isinstance(results, str) else json.dumps(results(mirror)))
        gt = mirror / "coco" / "annotations" / "instances_val2017.json"
        return ["eval", "--gt", gt, "--results", path, "--json", "record.json", *extra]
    return build


def first_id(mirror: Path) -> int:
    return first_images(mirror, 1)[0]["id"]


def merge_of(*names: str) -> Callable[[Path, Path], list[object]]:
    def build(tmp: Path, mirror: Path) -> list[object]:
        (tmp / "text.json").write_text("not a record")
        (tmp / "score.json").write_text(json.dumps({"kind": "score", "dataset": {}, "results": {}}))
        return ["eval", "--merge", *(tmp / n for n in names), "--out", "out", "--json", "record.json"]
    return build


def not_coco(text: bytes, message: str) -> Bad:
    return Bad(with_annotations(text), ("not a COCO annotation file", message, "instances_val2017.json"))


NOT_COCO = {
    "json-list": (b'[{"id": 1}]', "top level is not an object"),
    "no-images": (b'{"annotations": [], "categories": [{"id": 1, "name": "person"}]}', "no 'images' list"),
    "not-json": (b"image_id,category_id\n1,2\n", "not JSON"),
    "empty-file": (b"", "not JSON"),
    "image-without-size": (b'{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [], '
                           b'"categories": [{"id": 1, "name": "person"}]}', "lacks width, height"),
}
ONE_CATEGORY = b'"categories": [{"id": 1, "name": "person"}]'

BAD_INPUT: dict[str, Bad] = {
    # images
    "image-missing": Bad(lambda tmp, mirror: ev_coco(tmp, mirror, coco_root(mirror, tmp / "coco", linked=2)),
                         ("image not found", "{image}", "--coco")),
    "image-is-a-directory": Bad(with_third_image(None), ("image not found", "{image}")),
    "image-empty": Bad(with_third_image(lambda _: b""), ("not a readable image", "{image}", "empty file",
                                                          "2 images done are kept"), leaves=(CHECKPOINT,)),
    "image-truncated": Bad(with_third_image(lambda p: p.read_bytes()[: p.stat().st_size // 2]),
                           ("not a readable image", "{image}", "truncated"), leaves=(CHECKPOINT,)),
    "image-not-an-image": Bad(with_third_image(lambda _: b"this is not a JPEG\n"),
                              ("not a readable image", "{image}", "replace or remove"), leaves=(CHECKPOINT,)),
    "image-of-another-size": Bad(with_third_image(small_jpeg), ("{image}", "is 64x48 but the annotations say"),
                                 leaves=(CHECKPOINT,)),
    # annotations
    **{f"annotations-{k}": not_coco(*v) for k, v in NOT_COCO.items()},
    "annotations-unknown-category-id": Bad(
        with_edited_annotations(lambda gt: gt["annotations"][0].update(category_id=999)),
        ("instances_val2017.json", "category_id 999", "not in its 'categories'")),
    "annotations-box-on-an-unlisted-image": Bad(
        with_edited_annotations(lambda gt: gt["annotations"][0].update(image_id=424242)),
        ("instances_val2017.json", "image_id 424242", "not in its 'images'")),
    "annotations-list-no-images": Bad(with_annotations(b'{"images": [], "annotations": [], ' + ONE_CATEGORY + b"}"),
                                      ("lists no images to evaluate",)),
    "annotations-image-id-not-a-number": Bad(
        with_annotations(b'{"images": [{"id": "abc", "file_name": "a.jpg", "width": 1, "height": 1}], '
                         b'"annotations": [], ' + ONE_CATEGORY + b"}"),
        ("not a COCO annotation file", "'id' of an entry of 'images' is 'abc', not an integer")),
    "coco-root-missing": Bad(lambda tmp, mirror: ev_coco(tmp, mirror, tmp / "nowhere"), ("COCO root not found",)),
    "coco-root-without-annotations": Bad(coco_root_without_annotations,
                                         ("annotation file not found", "instances_val2017.json")),
    # models
    "model-missing": Bad(eval_of("{tmp}/missing.tflite", "--like", MODEL), ("model not found", "missing.tflite")),
    "model-empty": Bad(with_model(lambda _: b""), ("not a TFLite model", "model.tflite")),
    "model-truncated": Bad(with_model(lambda p: p.read_bytes()[: p.stat().st_size // 2]),
                           ("not a TFLite model", "model.tflite")),
    "model-not-a-model": Bad(with_model(lambda _: b"this is not a flatbuffer" * 100),
                             ("not a TFLite model", "model.tflite")),
    "model-wrong-format": Bad(with_model(small_jpeg), ("not a TFLite model", "model.tflite")),
    "model-outputs-not-the-card's": Bad(with_model(lambda p: p.read_bytes(), like="centernet-mobilenetv2-fpn-512-f32"),
                                        ("outputs do not match the card", "object_center", "heatmap")),
    "model-without-a-contract": Bad(bare_model(), ("--like", "--decoder")),
    "model-unknown-decoder": Bad(bare_model("--decoder", "nope"), ("invalid choice: 'nope'", "ltrb_centernet")),
    "model-unknown-zoo-name": Bad(eval_of("no-such-model"), ("unknown model 'no-such-model'", MODEL)),
    "model-unknown-like": Bad(with_model(lambda _: b"x", like="no-such-card"), ("unknown model 'no-such-card'",)),
    "model-not-in-the-mirror": Bad(coco_only_mirror, ("not in the mirror", "raw_f32.tflite")),
    "model-mirror-copy-corrupt": Bad(corrupt_mirror, ("sha256 mismatch", "raw_f32.tflite")),
    # options and environment
    "max-images-0": Bad(lambda tmp, mirror: ev(mirror, n=0), ("--max-images must be at least 1",)),
    "max-images-negative": Bad(lambda tmp, mirror: ev(mirror, n=-4), ("--max-images must be at least 1",)),
    "shard-0": Bad(lambda tmp, mirror: ev(mirror, "--shard", "0/3"), ("--shard wants i/N", "'0/3'")),
    "shard-beyond-count": Bad(lambda tmp, mirror: ev(mirror, "--shard", "4/3"), ("--shard wants i/N", "'4/3'")),
    "shard-not-a-fraction": Bad(lambda tmp, mirror: ev(mirror, "--shard", "half"), ("--shard wants i/N",)),
    "shard-with-no-images": Bad(lambda tmp, mirror: ev(mirror, "--shard", "3/3", n=2),
                                ("lists no images to evaluate for shard 3/3 of 2 images",)),
    "threads-0": Bad(lambda tmp, mirror: ev(mirror, "--threads", 0), ("--threads must be at least 1",)),
    "delegate-not-found": Bad(lambda tmp, mirror: ev(mirror, "--delegate", tmp / "nope.so"),
                              ("cannot load delegate", "nope.so", "no such file")),
    "delegate-option-without-value": Bad(lambda tmp, mirror: ev(mirror, "--delegate-option", "cache"),
                                         ("--delegate-option wants KEY=VALUE", "'cache'")),
    "unknown-protocol": Bad(lambda tmp, mirror: ev(mirror, "--protocol", "nope"), ("no protocol 'nope'", "native")),
    "unknown-engine": Bad(lambda tmp, mirror: ev(mirror, "--engine", "fastest"),
                          ("invalid choice: 'fastest'", "faster", "pycocotools")),
    "mirror-missing": Bad(lambda tmp, mirror: ["eval", MODEL, "--mirror", tmp / "no-mirror", "--quiet"],
                          ("mirror directory not found", "no-mirror", "--mirror")),
    "mirror-from-environment-missing": Bad(lambda tmp, mirror: ["eval", MODEL, "--quiet"],
                                           ("mirror directory not found", "$HARNESS_MIRROR"),
                                           env={MIRROR_ENV: "{tmp}/stale"}),
    "no-mirror-and-no-coco": Bad(lambda tmp, mirror: ["eval", MODEL, "--quiet"], ("--coco",)),
    # checkpoints (resume)
    "checkpoint-of-another-run": Bad(checkpoint_of_another_run, ("was written by a different run", "model_sha256",
                                                                 "--restart")),
    "checkpoint-not-a-checkpoint": Bad(with_checkpoint(b"my notes\n"), ("is not an eval checkpoint", "--restart")),
    # score
    **{f"score-annotations-{k}": Bad(gt_file(v[0]), ("not a COCO annotation file", v[1], "gt.json"))
       for k, v in NOT_COCO.items()},
    "score-annotations-missing": Bad(lambda tmp, mirror: ["eval", "--gt", tmp / "nope.json", "--results", tmp],
                                     ("annotation file not found", "nope.json")),
    "score-annotations-a-directory": Bad(lambda tmp, mirror: ["eval", "--gt", tmp, "--results", tmp],
                                         ("is a directory",)),
    "score-image-not-in-ground-truth": Bad(score_of(lambda m: [detection(first_id(m)), detection(999_999_999)]),
                                           ("999999999", "instances_val2017.json", "entry 1")),
    "score-unknown-category-id": Bad(score_of(lambda m: [detection(first_id(m), 999)]),
                                     ("category_id 999", "does not define")),
    "score-results-not-json": Bad(score_of("{not json"), ("not JSON", "results.json")),
    "score-results-an-object": Bad(score_of('{"annotations": []}'), ("JSON list", "results.json")),
    "score-results-short-bbox": Bad(score_of('[{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}]'),
                                    ("entry 0 is not a bbox detection",)),
    "score-results-segmentation": Bad(score_of('[{"image_id": 1, "category_id": 1, "segmentation": [], '
                                               '"score": 0.5}]'), ("entry 0 is not a bbox detection",)),
    "score-results-missing": Bad(lambda tmp, mirror: ["eval", "--gt", mirror / "coco/annotations/"
                                                      "instances_val2017.json", "--results", tmp / "nope.json"],
                                 ("results file not found", "nope.json")),
    "score-unknown-engine": Bad(score_of(lambda m: [detection(first_id(m))], "--engine", "fastest"),
                                ("invalid choice: 'fastest'", "faster", "pycocotools")),
    "score-max-images-0": Bad(score_of(lambda m: [detection(first_id(m))], "--max-images", 0), ("--max-images",)),
    "score-max-images-negative": Bad(score_of(lambda m: [detection(first_id(m))], "--max-images", -1),
                                     ("--max-images",)),
    # merge
    "merge-record-missing": Bad(merge_of("nope.json"), ("run record not found", "nope.json")),
    "merge-not-a-record": Bad(merge_of("text.json"), ("not JSON", "text.json")),
    "merge-not-a-shard-record": Bad(merge_of("score.json"), ("not a harness run record", "score.json")),
}


def _params() -> list:
    return [pytest.param(case, id=name, marks=[pytest.mark.xfail(strict=True, reason=case.known_bug)]
                         if case.known_bug else []) for name, case in BAD_INPUT.items()]


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Bad, capsys, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.format(tmp=tmp_path))
    argv = case.argv(tmp_path, mirror)
    before = set(files_under(tmp_path))
    rc, _, err = run_cli(capsys, *argv)
    third = first_images(mirror, 3)[2]["file_name"]
    assert_user_error(rc, err, *(s.format(image=third) for s in case.says))
    left = sorted(p.name for p in set(files_under(tmp_path)) - before)
    assert left == sorted(case.leaves), "no output, record or temporary file is left behind"


def test_the_table_covers_every_command_that_takes_input() -> None:
    """eval of a model, of a results file (score-*) and of shards (merge-*) all have rows; a new command with
    inputs should get rows too."""
    commands = {name.split("-")[0] for name in BAD_INPUT}
    assert {"image", "annotations", "model", "shard", "checkpoint", "score", "merge"} <= commands


# --------------------------------------------------------------------------------------------------
# Readable images in other modes are converted, not rejected


def gray(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)


def save(image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _variants() -> dict[str, tuple[Callable[[np.ndarray], bytes], Callable[[np.ndarray], np.ndarray]]]:
    """mode -> (encode the RGB pixels that way, the RGB array read_rgb must return for them)."""
    from PIL import Image

    def cmyk(rgb: np.ndarray) -> bytes:
        return save(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=100)

    def alpha(rgb: np.ndarray) -> np.ndarray:
        return np.dstack([rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None].repeat(rgb.shape[0], 0)])

    return {
        "grayscale-png": (lambda rgb: save(Image.fromarray(gray(rgb)), "PNG"),
                          lambda rgb: np.repeat(gray(rgb)[..., None], 3, axis=2)),
        "rgba-png": (lambda rgb: save(Image.fromarray(alpha(rgb), "RGBA"), "PNG"), lambda rgb: rgb),
        "gray-alpha-png": (lambda rgb: save(Image.fromarray(gray(rgb)).convert("LA"), "PNG"),
                           lambda rgb: np.repeat(gray(rgb)[..., None], 3, axis=2)),
        "16-bit-png": (lambda rgb: save(Image.fromarray(gray(rgb).astype(np.uint16) * 257), "PNG"),
                       lambda rgb: np.repeat(gray(rgb)[..., None], 3, axis=2)),
        "palette-png": (lambda rgb: save(Image.fromarray(rgb).quantize(256), "PNG"),
                        lambda rgb: np.asarray(Image.fromarray(rgb).quantize(256).convert("RGB"))),
        "cmyk-jpeg": (cmyk, lambda rgb: np.asarray(Image.open(io.BytesIO(cmyk(rgb))).convert("RGB"))),
    }


VARIANTS = list(_variants())


@pytest.mark.parametrize("mode", VARIANTS)
def test_read_rgb_converts(mode: str, tmp_path: Path) -> None:
    """Each mode reads as the RGB the TF pipelines would see: gray replicated, alpha dropped, 16-bit scaled."""
    from harness.models.images import read_rgb

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    encode, expected = _variants()[mode]
    (tmp_path / "img").write_bytes(encode(rgb))
    got = read_rgb(tmp_path / "img", (32, 24))
    assert got.shape == (24, 32, 3) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected(rgb))


@pytest.mark.parametrize("mode", VARIANTS)
def test_eval_converts_readable_images(mode: str, capsys, mirror: Path, tmp_path: Path) -> None:
    """The first image replaced by the same picture in another mode: the eval succeeds and scores it."""
    from PIL import Image

    root = coco_root(mirror, tmp_path / "coco", linked=3)
    info = first_images(mirror, 1)[0]
    path = root / "val2017" / info["file_name"]
    rgb = np.asarray(Image.open(mirror / "coco" / "val2017" / info["file_name"]).convert("RGB"))
    path.unlink()
    path.write_bytes(_variants()[mode][0](rgb))
    rc, _, err = run_cli(capsys, *ev_coco(tmp_path, mirror, root))
    assert (rc, err.strip()) == (0, ""), err
    dets = json.loads((tmp_path / "out" / f"detections_{MODEL}_native.json").read_text())
    assert sum(d["image_id"] == info["id"] for d in dets) == 100


def test_score_success_writes_only_the_record(capsys, mirror: Path, tmp_path: Path) -> None:
    """The counterpart of the errors above: a good run exits 0, prints nothing on stderr, leaves one file."""
    argv = score_of(lambda m: [detection(first_id(m))])(tmp_path, mirror)
    rc, out, err = run_cli(capsys, *argv)
    assert (rc, err) == (0, "")
    assert "AP" in out
    assert files_under(tmp_path) == [tmp_path / "record.json", tmp_path / "results.json"]
    assert json.loads((tmp_path / "record.json").read_text())["results"]["detection_count"] == 1

