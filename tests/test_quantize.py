"""`harness quantize`: calibration sets that replay exactly, converter modes, layers kept in float, the record.

The fast tests convert a tiny SavedModel built here; the slow ones replay NXP's recipe on the mirror's
real model and must reproduce its int8 artifact byte for byte.
"""

from __future__ import annotations

import csv
import glob
import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import import_tf

from harness.cli import main
from harness.common.fileio import sha256_file
from harness.errors import HarnessError
from harness.models.backends import tflite
from harness.quantize.calibration import (
    DRAWS,
    Calibration,
    calibration_overlap,
    draw_calibration,
    glob_names,
    resolved_filter,
)
from harness.quantize.convert import convert, float_layer_names, tf_interpreter
from harness.quantize.sidecar import read_sidecar

SIZE = 32



def make_images(directory: Path, n: int, size: tuple[int, int] = (40, 30), seed: int = 0) -> Path:
    """n small JPEGs of noise named like COCO files, plus a hidden file and a subdirectory to be ignored."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
            directory / f"{1000 + 7 * i:012d}.jpg")
    (directory / ".DS_Store").write_text("not an image")
    (directory / "sub").mkdir(exist_ok=True)
    return directory


@pytest.fixture(scope="module")
def tiny_saved_model(tmp_path_factory) -> Path:
    """conv 3x3 (3->8) + relu, then conv 1x1 (8->4): float32 [1,32,32,3] in 0..255 -> `out` [1,32,32,4]."""
    tf = import_tf()
    rng = np.random.default_rng(3)
    w1 = tf.constant(rng.normal(0, 0.02, (3, 3, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.5, (1, 1, 8, 4)).astype(np.float32))

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="images")])
        def serve(self, images):
            h = tf.nn.relu(tf.nn.conv2d(images, w1, 1, "SAME", name="stem"))
            return {"out": tf.nn.conv2d(h, w2, 1, "SAME", name="head")}

    module = Tiny()
    d = tmp_path_factory.mktemp("tiny") / "saved_model"
    tf.saved_model.save(module, str(d), signatures={"serving_default": module.serve})
    return d


@pytest.fixture(scope="module")
def calib_dir(tmp_path_factory) -> Path:
    return make_images(tmp_path_factory.mktemp("calib") / "images", 12)


def _dtypes(model: bytes) -> tuple[str, set[str]]:
    """(input dtype, dtypes of all op outputs) of a .tflite model."""
    interp = tf_interpreter(model_content=model)
    tensors = tflite.read_tensors(interp)
    outs = {tensors[op.outputs[0]].dtype for op in tflite.read_ops(interp, "the test")}
    return np.dtype(interp.get_input_details()[0]["dtype"]).name, outs


# --------------------------------------------------------------------------------------------------
# Calibration sets


def test_listing_is_what_sorted_glob_gives_non_hidden_files_only(calib_dir):
    names = glob_names(calib_dir)
    assert names == sorted(Path(p).name for p in glob.glob(str(calib_dir / "*")) if Path(p).is_file())
    assert ".DS_Store" not in names and "sub" not in names and len(names) == 12


def test_shuffle_draw_is_nxps_random_seed_shuffle_first_n(calib_dir):
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=5, draw="shuffle", seed=1337)
    expected = sorted(str(p) for p in calib_dir.glob("*.jpg"))  # NXP: sorted(glob('val2017/*'))
    random.seed(1337)
    random.shuffle(expected)
    assert list(cal.files) == [Path(p).name for p in expected[:5]]
    assert cal.draw == "shuffle" and cal.seed == 1337


def test_draws_are_reproducible_and_the_seed_matters(calib_dir):
    a = draw_calibration(calib_dir, size=(SIZE, SIZE), count=6, seed=7)
    assert a.files == draw_calibration(calib_dir, size=(SIZE, SIZE), count=6, seed=7).files
    assert a.files != draw_calibration(calib_dir, size=(SIZE, SIZE), count=6, seed=8).files
    assert draw_calibration(calib_dir, size=(SIZE, SIZE), count=3, draw="sorted").files == tuple(
        glob_names(calib_dir)[:3])


def test_a_list_is_replayed_in_its_own_order(calib_dir, tmp_path):
    names = glob_names(calib_dir)[::-3]
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps(names))
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), list_file=listing)
    assert list(cal.files) == names and cal.draw == "list" and cal.seed is None
    text = tmp_path / "list.txt"
    text.write_text("# comment\n" + "\n".join(names) + "\n")
    assert draw_calibration(calib_dir, size=(SIZE, SIZE), list_file=text).files == cal.files


@pytest.mark.parametrize("kwargs, message", [
    ({"count": 13}, "fewer than the 13"),
    ({"draw": "random"}, "unknown draw"),
    ({"resize": "sinc"}, "unknown resize filter"),
    ({"count": 0, "draw": "sorted"}, "at least 1"),
])
def test_impossible_draws_say_what_is_wrong(calib_dir, kwargs, message):
    with pytest.raises(HarnessError, match=message):
        draw_calibration(calib_dir, size=(SIZE, SIZE), **kwargs)


def test_a_list_naming_files_that_are_not_there_is_refused(calib_dir, tmp_path):
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps(["000000000001.jpg"]))
    with pytest.raises(HarnessError, match="not in"):
        draw_calibration(calib_dir, size=(SIZE, SIZE), list_file=listing)


def test_pil_default_resize_is_recorded_as_the_filter_pillow_really_uses(calib_dir):
    resolved = resolved_filter("pil-default")
    assert resolved == "bicubic"  # Pillow >= 7 resizes RGB images with BICUBIC unless told otherwise
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=2, resize="pil-default")
    batch = next(cal.batches())
    with Image.open(calib_dir / cal.files[0]) as im:
        want = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.BICUBIC), np.float32)
    assert batch.shape == (1, SIZE, SIZE, 3) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[0], want)
    d = cal.to_dict()
    assert d["resize"] == "pil-default" and d["resize_resolved"] == "bicubic" and d["files"] == list(cal.files)
    assert Calibration.from_dict(json.loads(json.dumps(d))) == cal


def test_overlap_with_evaluation_images_is_found_by_name_and_by_content(calib_dir, tmp_path):
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=12, draw="sorted")
    eval_dir = tmp_path / "val"
    eval_dir.mkdir()
    (eval_dir / cal.files[0]).write_bytes((calib_dir / cal.files[0]).read_bytes())  # same name
    (eval_dir / "000000999999.jpg").write_bytes((calib_dir / cal.files[1]).read_bytes())  # renamed copy
    out = calibration_overlap(cal, eval_dir)
    assert out["by_name"] == [cal.files[0]]
    assert set(out["by_content"]) == {cal.files[0], cal.files[1]}
    assert calibration_overlap(cal, tmp_path / "nowhere")["by_name"] == []


# --------------------------------------------------------------------------------------------------
# Converter modes


@pytest.mark.parametrize("mode, input_dtype, activation", [
    ("int8", "int8", "int8"), ("16x8", "float32", "int16"), ("dynamic", "float32", "float32"),
    ("float32", "float32", "float32"),
])
def test_each_mode_gives_the_tensor_types_it_promises(tiny_saved_model, calib_dir, mode, input_dtype, activation):
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=4)
    inp, outs = _dtypes(convert(tiny_saved_model, mode, cal))
    assert inp == input_dtype
    assert activation in outs
    if mode == "int8":
        assert outs <= {"int8", "float32"}  # float32 only where the int8 outputs are dequantized
    if mode in ("dynamic", "float32"):
        assert "int8" not in outs and "int16" not in outs


def test_the_same_inputs_convert_to_the_same_bytes(tiny_saved_model, calib_dir):
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=4, seed=3)
    assert convert(tiny_saved_model, "int8", cal) == convert(tiny_saved_model, "int8", cal)
    other = draw_calibration(calib_dir, size=(SIZE, SIZE), count=4, seed=4)
    assert convert(tiny_saved_model, "int8", cal) != convert(tiny_saved_model, "int8", other)


def test_a_calibrated_mode_without_images_is_refused(tiny_saved_model):
    with pytest.raises(HarnessError, match="needs calibration images"):
        convert(tiny_saved_model, "int8", None)


def _op_names(model: bytes) -> dict[str, str]:
    interp = tf_interpreter(model_content=model)
    tensors = tflite.read_tensors(interp)
    return {tensors[op.outputs[0]].name: tensors[op.outputs[0]].dtype for op in tflite.read_ops(interp, "the test")}


def test_named_layers_stay_float_and_the_rest_int8(tiny_saved_model, calib_dir):
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=4)
    full = _op_names(convert(tiny_saved_model, "int8", cal))
    stem = next(n for n in full if "stem" in n)
    kept = _op_names(convert(tiny_saved_model, "int8", cal, float_layers=[stem]))
    assert full[stem] == "int8" and kept[stem] == "float32"
    assert "int8" in {dtype for name, dtype in kept.items() if name != stem}  # the head conv stays int8


def test_op_types_expand_to_their_layers_and_unknown_names_are_refused(tiny_saved_model, calib_dir):
    names = _op_names(convert(tiny_saved_model, "float32"))
    stem = next(n for n in names if "stem" in n)
    assert float_layer_names(tiny_saved_model, [stem]) == [stem]
    with pytest.raises(HarnessError, match="every layer would stay in float"):
        float_layer_names(tiny_saved_model, ops=["CONV_2D"])  # both layers are convs
    with pytest.raises(HarnessError, match="did you mean"):
        float_layer_names(tiny_saved_model, [stem + "x"])
    with pytest.raises(HarnessError, match="no op of type MUL"):
        float_layer_names(tiny_saved_model, ops=["MUL"])
    cal = draw_calibration(calib_dir, size=(SIZE, SIZE), count=4)
    with pytest.raises(HarnessError, match="mode int8 only"):
        convert(tiny_saved_model, "16x8", cal, float_layers=[stem])


def test_quantize_keeps_named_layers_float_and_records_them(tiny_saved_model, calib_dir, tmp_path):
    stem = next(n for n in _op_names(convert(tiny_saved_model, "float32")) if "stem" in n)
    listing = tmp_path / "float.txt"
    listing.write_text(f"# keep the stem\n{stem}\n")
    out = tmp_path / "stem_float.tflite"
    assert main(["quantize", str(tiny_saved_model), "--calib", str(calib_dir), "--count", "4", "--out", str(out),
                 "--float-layers-from", str(listing)]) == 0
    rec = read_sidecar(out)
    assert rec["float_layers"] == [stem] and rec["float_ops"] == []
    assert rec["selective_route"].startswith("tf.lite.experimental.QuantizationDebugger")
    assert rec["output"]["input_dtype"] == "float32"  # the debugger's route keeps float input and outputs
    assert _op_names(out.read_bytes())[stem] == "float32"


# --------------------------------------------------------------------------------------------------
# The command


def test_quantize_writes_the_model_and_a_record_of_how_it_was_made(tiny_saved_model, calib_dir, tmp_path, capsys):
    out = tmp_path / "models" / "tiny_int8.tflite"
    eval_dir = tmp_path / "val"
    eval_dir.mkdir()
    first = draw_calibration(calib_dir, size=(SIZE, SIZE), count=5, seed=11).files[0]
    (eval_dir / first).write_bytes((calib_dir / first).read_bytes())
    assert main(["quantize", str(tiny_saved_model), "--calib", str(calib_dir), "--count", "5", "--seed", "11",
                 "--out", str(out), "--images", str(eval_dir)]) == 0
    err = capsys.readouterr().err
    assert "1 of 5 calibration images are also evaluation images" in err
    rec = read_sidecar(out)
    assert rec["kind"] == "quantize" and rec["mode"] == "int8"
    assert rec["output"]["sha256"] == sha256_file(out) and rec["output"]["input_dtype"] == "int8"
    cal = rec["calibration"]
    assert cal["count"] == 5 and cal["seed"] == 11 and cal["draw"] == "shuffle" and cal["resize"] == "bilinear"
    assert cal["files"] == list(draw_calibration(calib_dir, size=(SIZE, SIZE), count=5, seed=11).files)
    assert rec["source"]["sha256"] and rec["tensorflow"] and rec["float_layers"] == []
    assert rec["calibration_overlap"]["by_name"] == [first]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_the_nxp_recipe_sets_mode_seed_count_and_filter(tiny_saved_model, calib_dir, tmp_path):
    out = tmp_path / "nxp.tflite"
    assert main(["quantize", str(tiny_saved_model), "--recipe", "nxp", "--calib", str(calib_dir), "--count", "12",
                 "--out", str(out)]) == 0
    rec = read_sidecar(out)
    assert rec["recipe"] == "nxp" and rec["mode"] == "int8"
    assert rec["calibration"]["seed"] == 1337 and rec["calibration"]["resize"] == "pil-default"


@pytest.mark.parametrize("rank, kept", [("share", 0), ("growth_db", 1)])
def test_layers_to_keep_float_come_from_a_compare_records_ranking(tiny_saved_model, calib_dir, tmp_path, rank, kept):
    names = list(_op_names(convert(tiny_saved_model, "float32")))
    record = tmp_path / "compare.json"
    record.write_text(json.dumps({"kind": "quant_compare", "layers": [
        {"name": names[0], "share": 0.9, "growth_db": 0.5}, {"name": names[1], "share": 0.1, "growth_db": 7.0}]}))
    out = tmp_path / f"{rank}.tflite"
    assert main(["quantize", str(tiny_saved_model), "--calib", str(calib_dir), "--count", "4", "--out", str(out),
                 "--float-layers-from", str(record), "--float-top", "1", "--float-rank", rank]) == 0
    assert read_sidecar(out)["float_layers"] == [names[kept]]


@pytest.mark.parametrize("argv, message", [
    (["--calib", "{calib}", "--mode", "int9"], "invalid choice: 'int9'"),
    (["--mode", "int8"], "needs calibration images"),
    (["--calib", "{calib}", "--recipe", "acme"], "invalid choice: 'acme'"),
])
def test_quantize_errors_are_one_line(tiny_saved_model, calib_dir, tmp_path, capsys, argv, message):
    argv = [a.replace("{calib}", str(calib_dir)) for a in argv]
    assert main(["quantize", str(tiny_saved_model), "--out", str(tmp_path / "x.tflite"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("harness: error:") and message in err and "\n" not in err
    assert not (tmp_path / "x.tflite").exists()


def test_quantize_refuses_a_directory_that_is_not_a_saved_model(tmp_path, capsys):
    assert main(["quantize", str(tmp_path), "--out", str(tmp_path / "x.tflite"), "--mode", "dynamic"]) == 2
    assert "not a SavedModel directory" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The real recipe on the mirror


def test_the_mirror_list_is_nxps_draw_from_the_1070_image_directory(mirror):
    """Replaying NXP's shuffle over the names of the 1,070-image directory gives the mirror's list exactly."""
    with open(mirror / "coco" / "PROVENANCE_images.tsv", newline="") as f:
        names = [r["file"] for r in csv.DictReader(f, delimiter="\t") if r["has_full_gt"] == "0"]
    assert len(names) == 1070
    drawn = DRAWS["shuffle"](sorted(names), 100, 1337)  # only the names matter for the draw
    assert drawn == json.loads((mirror / "coco" / "calibration_nxp_recipe_100.json").read_text())


@pytest.mark.slow
def test_nxp_recipe_reproduces_the_mirror_int8_model_byte_for_byte(mirror, tmp_path):
    """About 100 s of calibration: the model `raw_int8.tflite` was made this way, and nothing else changes it."""
    out = tmp_path / "raw_int8.tflite"
    coco = mirror / "coco"
    assert main(["quantize", str(mirror / "models" / "mb3-centernet" / "raw"), "--recipe", "nxp",
                 "--calib", str(coco / "val2017_unlabeled"),
                 "--calib-list", str(coco / "calibration_nxp_recipe_100.json"),
                 "--mirror", str(mirror), "--out", str(out)]) == 0
    assert sha256_file(out) == sha256_file(mirror / "models" / "mb3-centernet" / "raw_int8.tflite")
    rec = read_sidecar(out)
    assert rec["calibration_overlap"]["by_name"] == [] and rec["calibration_overlap"]["by_content"] == []
    assert rec["calibration"]["resize_resolved"] == "bicubic" and rec["calibration"]["count"] == 100


@pytest.mark.parametrize("mode", ["L", "RGB", "P", "CMYK"])
def test_calibration_images_are_nxps_open_convert_resize_exactly(tmp_path, mode):
    """NXP's recipe: Image.open(f).convert("RGB").resize((w, h)) with Pillow's default filter, as float32.

    Calibration reads through harness.models.images now; for every 8-bit mode the batch must stay the same.
    """
    rng = np.random.default_rng(7)
    d = tmp_path / "calib"
    d.mkdir()
    im = Image.fromarray(rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)).convert(mode)
    im.save(d / "000000000001.png" if mode != "CMYK" else d / "000000000001.jpg")
    cal = draw_calibration(d, size=(SIZE, SIZE + 8), count=1, draw="sorted", resize="pil-default")
    with Image.open(d / cal.files[0]) as src:
        want = np.asarray(src.convert("RGB").resize((SIZE + 8, SIZE)), dtype=np.float32)[None]
    got = next(cal.batches())
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
