"""`harness compare FLOAT QUANT`: per-head and per-layer error, and where the error starts and grows.

The synthetic model here fails under int8 the way the first block of mb3-centernet does: a per-tensor activation holds a
large channel and a tiny one, and the next depthwise conv multiplies the tiny one by a large weight.
Each op quantizes about as well as rounding allows, yet the depthwise conv amplifies the rounding
noise of its input; the comparison must name it, and keeping it and its input in float must help.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from synthetic import import_tf

from harness.analyse.quant_error.compare import delta_ap, head_errors
from harness.analyse.quant_error.layers import accumulated_errors, layerwise_errors
from harness.analyse.quant_error.ranking import CLEAN_SNR_DB, Layer, summarize_layers
from harness.analyse.tensor_error import SNR_CAP_DB, ErrorStats
from harness.cli import main
from harness.errors import HarnessError
from harness.models.backends import tflite
from harness.quantize.calibration import draw_calibration
from harness.quantize.convert import convert, tf_interpreter

SIZE = 32



# --------------------------------------------------------------------------------------------------
# Error statistics


def test_identical_tensors_have_no_error():
    s = ErrorStats()
    x = np.linspace(-3, 5, 100, dtype=np.float32)
    s.update(x, x)
    assert s.snr_db == SNR_CAP_DB and s.cosine == pytest.approx(1.0) and s.mse == 0.0 and s.max_abs == 0.0


def test_snr_cosine_and_mse_of_a_known_error():
    s = ErrorStats()
    f = np.ones(1000, np.float32)
    s.update(f, f + np.float32(0.1))
    assert s.snr_db == pytest.approx(20.0, abs=1e-4)  # signal 1, noise 0.01
    assert s.mse == pytest.approx(0.01, rel=1e-5) and s.max_abs == pytest.approx(0.1, rel=1e-5)
    assert s.cosine == pytest.approx(1.0)  # a constant offset keeps the direction
    s.update(-f, f)  # pooled over images: a second image with the sign flipped
    assert s.cosine == pytest.approx((1000 * 1.1 - 1000) / math.sqrt(2000 * (1000 * 1.21 + 1000)))


def test_undefined_metrics_are_none_not_zero():
    s = ErrorStats()
    assert s.snr_db is None and s.mse is None
    s.update(np.zeros(4), np.ones(4))
    assert s.snr_db is None and s.cosine is None  # no signal to compare against


def test_uniform_rounding_is_about_0_29_steps_and_its_snr_is_predicted():
    rng = np.random.default_rng(0)
    f = rng.uniform(-10, 10, 200_000)
    step = 0.25
    s = ErrorStats()
    s.update(f, np.round(f / step) * step)
    assert s.rmse_over_scale(step) == pytest.approx(1 / math.sqrt(12), rel=0.01)
    assert s.snr_db == pytest.approx(s.rounding_snr_db(step), abs=0.1)


# --------------------------------------------------------------------------------------------------
# Summarizing layers


def _layer(index, name, inputs, f, q, scale=None):
    layer = Layer(index, "CONV_2D", name, "int8", scale, tuple(inputs))
    layer.acc.update(f, q)
    return layer


def test_growth_share_ranking_and_first_bad_layer_of_a_chain():
    f = np.ones(10_000)
    noise = np.random.default_rng(1).normal(0, 1, f.size)
    # input exact; a: 40 dB; b: 10 dB (loses 30); c: 5 dB (loses 5); d reads a and c: 20 dB (gains on c)
    layers = [_layer(0, "a", ["in"], f, f + noise * 0.01),
              _layer(1, "b", ["a"], f, f + noise * 10 ** (-10 / 20)),
              _layer(2, "c", ["b"], f, f + noise * 10 ** (-5 / 20)),
              _layer(3, "d", ["a", "c"], f, f + noise * 0.1)]
    inp = ErrorStats()
    inp.update(f, f)
    out = summarize_layers(layers, ("in", inp), threshold_db=15.0)
    rows = {r["name"]: r for r in out["layers"]}
    assert rows["a"]["growth_db"] == pytest.approx(CLEAN_SNR_DB - 40, abs=0.5)  # exact input: counted from 60 dB
    assert rows["b"]["growth_db"] == pytest.approx(30.0, abs=0.5)
    assert rows["c"]["growth_db"] == pytest.approx(5.0, abs=0.5)
    assert rows["d"]["growth_db"] == 0.0  # worst input is c at 5 dB; d at 20 dB lost nothing
    assert out["ranking"] == ["b", "a", "c"]
    assert out["first_bad_layer"] == "b"
    assert sum(r["share"] for r in out["layers"]) == pytest.approx(1.0)
    assert [r["cumulative_share"] for r in out["layers"]] == sorted(r["cumulative_share"] for r in out["layers"])
    assert rows["d"]["cumulative_share"] == pytest.approx(1.0)
    assert [r["index"] for r in out["layers"]] == [0, 1, 2, 3]  # execution order kept


def test_rounding_an_exact_input_well_is_not_counted_as_growth():
    rng = np.random.default_rng(2)
    f = rng.uniform(0, 100, 50_000)
    step = 100 / 255
    layer = _layer(0, "a", ["in"], f, np.round(f / step) * step, scale=step)
    inp = ErrorStats()
    inp.update(f, f)
    row = summarize_layers([layer], ("in", inp))["layers"][0]
    assert row["snr_db"] > 40 and row["growth_db"] < 0.2 and row["accumulated_rmse_over_scale"] == pytest.approx(
        0.289, abs=0.01)


# --------------------------------------------------------------------------------------------------
# A model that int8 breaks the way it breaks mb3-centernet


def make_amplifier(directory: Path) -> Path:
    """[1,32,32,3] 0..255 -> stem (1x1 conv: three channels 0..100 and one of +-0.5) -> amp (depthwise 3x3:
    x0.001 on the large channels, x100 on the small one) -> out (1x1 conv to 2 channels)."""
    tf = import_tf()
    w1 = np.zeros((1, 1, 3, 4), np.float32)
    for c in range(3):
        w1[0, 0, c, c] = 100 / 255
    w1[0, 0, 0, 3], w1[0, 0, 1, 3] = 0.5 / 255, -0.5 / 255
    dw = np.zeros((3, 3, 4, 1), np.float32)
    dw[1, 1, :, 0] = (0.001, 0.001, 0.001, 100.0)
    w2 = np.random.default_rng(0).normal(0, 0.5, (1, 1, 4, 2)).astype(np.float32)

    class Amplifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="images")])
        def serve(self, images):
            stem = tf.nn.conv2d(images, w1, 1, "SAME", name="stem")
            amp = tf.nn.depthwise_conv2d(stem, dw, [1, 1, 1, 1], "SAME", name="amp")
            return {"out": tf.nn.conv2d(amp, w2, 1, "SAME", name="out")}

    module = Amplifier()
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serve})
    return directory


def smooth_images(directory: Path, n: int, seed: int) -> Path:
    """Smooth random images: the large channels vary slowly, the small difference channel matters."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((48, 40), Image.BICUBIC).save(directory / f"{i:012d}.png")
    return directory


@pytest.fixture(scope="module")
def amplifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("amp")
    saved = make_amplifier(root / "saved_model")
    cal = draw_calibration(smooth_images(root / "calib", 8, 0), size=(SIZE, SIZE), count=8, resize="bilinear")
    paths = {}
    for name, mode, keep in (("f32", "float32", ()), ("int8", "int8", ()), ("16x8", "16x8", ())):
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(convert(saved, mode, cal, keep))
    names = _op_outputs(paths["f32"])
    paths["names"] = names
    keep = [names["CONV_2D"][0], names["DEPTHWISE_CONV_2D"][0]]  # the amplifier and the input it amplifies
    paths["selective"] = root / "selective.tflite"
    paths["selective"].write_bytes(convert(saved, "int8", cal, keep))
    images = smooth_images(root / "eval", 4, 1)
    batches = [b for b in draw_calibration(images, size=(SIZE, SIZE), count=4, draw="sorted",
                                           resize="bilinear").batches()]
    return {"saved": saved, "cal": cal, "batches": batches, **paths}


def _op_outputs(path: Path) -> dict[str, list[str]]:
    interp = tf_interpreter(model_path=str(path))
    tensors = tflite.read_tensors(interp)
    out: dict[str, list[str]] = {}
    for op in tflite.read_ops(interp, "the test"):
        out.setdefault(op.op, []).append(tensors[op.outputs[0]].name)
    return out


def _rows(amplifier, quant):
    acc = accumulated_errors(amplifier["f32"], amplifier[quant], amplifier["batches"])
    return acc, summarize_layers(acc["layers"], acc["input"])


def test_the_amplifying_layer_is_where_int8_error_starts_and_grows(amplifier):
    acc, out = _rows(amplifier, "int8")
    assert acc["mode"] == "int8" and acc["images"] == 4
    stem, amp, head = out["layers"]  # conv, depthwise conv, conv (its DEQUANTIZE to the float output folded in)
    assert (stem["op"], amp["op"], head["op"]) == ("CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D")
    assert stem["index"] < amp["index"] < head["index"]
    assert stem["snr_db"] > 30  # the stem itself is quantized well...
    assert amp["snr_db"] < 20 and amp["growth_db"] > 15  # ...and the depthwise conv blows its noise up
    assert amp["injected_snr_db"] > 30  # though what it adds itself, the rounding of its output, is small
    assert out["first_bad_layer"] == amp["name"]
    assert out["growth_ranking"][0] == amp["name"]
    assert out["ranking_basis"] == "injected" and sum(r["share"] for r in out["layers"]) == pytest.approx(1.0)
    assert set(out["share_by_op"]) == {"CONV_2D", "DEPTHWISE_CONV_2D"}


def test_16x8_keeps_the_amplified_noise_small(amplifier):
    _, out16 = _rows(amplifier, "16x8")
    _, out8 = _rows(amplifier, "int8")
    amp16 = next(r for r in out16["layers"] if r["op"] == "DEPTHWISE_CONV_2D")
    amp8 = next(r for r in out8["layers"] if r["op"] == "DEPTHWISE_CONV_2D")
    assert amp16["snr_db"] > amp8["snr_db"] + 30 and out16["first_bad_layer"] is None


def test_layerwise_error_shows_the_amplifier_quantizes_well_on_its_own(amplifier):
    lw = layerwise_errors(amplifier["saved"], amplifier["cal"], lambda: iter(amplifier["batches"]),
                          amplifier["int8"])
    assert lw["quantization_check"]["same_model"] is True  # same calibration: the very model compared
    amp = amplifier["names"]["DEPTHWISE_CONV_2D"][0]
    stats, scale = lw["stats"][amp], lw["scales"][amp]
    assert stats.rmse_over_scale(scale) < 1.0  # about one rounding step: the op itself is fine
    assert stats.snr_db > 30


def test_keeping_the_named_layers_float_recovers_the_output(amplifier):
    def out_snr(quant):
        acc, _ = _rows(amplifier, quant)
        return next(layer for layer in acc["layers"] if layer.op == "CONV_2D" and layer.name
                    == amplifier["names"]["CONV_2D"][-1]).acc.snr_db

    assert out_snr("selective") > out_snr("int8") + 20


def test_models_with_nothing_in_common_are_refused(amplifier, tmp_path):
    tf = import_tf()

    class Other(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32)])
        def serve(self, x):
            return {"y": tf.math.tanh(x * 0.5, name="zzz")}

    m = Other()
    tf.saved_model.save(m, str(tmp_path / "other"), signatures={"serving_default": m.serve})
    other = tmp_path / "other.tflite"
    other.write_bytes(convert(tmp_path / "other", "float32"))
    with pytest.raises(HarnessError, match="no tensor"):
        accumulated_errors(amplifier["f32"], other, amplifier["batches"][:1])


# --------------------------------------------------------------------------------------------------
# Heads and AP


class _Fixed:
    """A stand-in backend whose heads are fixed arrays (the comparison only calls predict)."""

    def __init__(self, heads):
        self.heads = heads

    def predict(self, batch):
        return self.heads


def test_head_errors_compare_each_head_pooled_over_images():
    f = {"heatmap": np.full((1, 4, 4, 2), 0.5, np.float32), "wh": np.ones((1, 4, 4, 4), np.float32)}
    q = {"heatmap": f["heatmap"], "wh": f["wh"] * 1.1}
    out = head_errors(_Fixed(f), _Fixed(q), [np.zeros((1, 8, 8, 3))] * 3)
    assert out["heatmap"]["snr_db"] == SNR_CAP_DB and out["heatmap"]["cosine"] == pytest.approx(1.0)
    assert out["wh"]["snr_db"] == pytest.approx(20.0, abs=1e-3) and out["wh"]["max_abs_err"] == pytest.approx(0.1)


def _eval(ap, per_class, ids="x"):
    stats = {"AP": ap, "AP50": ap + 0.2, "AP75": ap, "APs": ap / 2, "APm": ap, "APl": ap * 1.5, "AR100": ap}
    return {"kind": "eval", "dataset": {"annotation_sha256": "a", "image_ids_sha256": ids},
            "protocol": {"name": "native"}, "results": {"stats": stats, "per_class": per_class}}


def test_delta_ap_per_size_and_class_and_like_for_like():
    pc = lambda ap, s: {"AP": ap, "APs": s, "APm": ap, "APl": ap}  # noqa: E731
    f = _eval(0.30, {"person": pc(0.5, 0.2), "cat": pc(0.4, -1.0), "toaster": pc(-1.0, -1.0)})
    q = _eval(0.10, {"person": pc(0.1, 0.1), "cat": pc(0.35, -1.0), "toaster": pc(-1.0, -1.0)})
    d = delta_ap(f, q)
    assert d["like_for_like"] and d["overall"]["AP"]["delta"] == pytest.approx(-0.2)
    assert d["overall"]["APs"]["delta"] == pytest.approx(-0.1)
    assert d["per_class"]["person"]["AP"] == pytest.approx(-0.4) and d["per_class"]["person"]["APs"] == pytest.approx(
        -0.1)
    assert d["per_class"]["cat"]["APs"] is None  # absent in both: no difference to report
    assert "toaster" not in d["per_class"]
    assert d["worst_classes"][0] == "person"
    assert not delta_ap(f, _eval(0.1, {}, ids="y"))["like_for_like"]


# --------------------------------------------------------------------------------------------------
# The command, on models with mb3-centernet's contract


def make_mb3_like(directory: Path) -> Path:
    """images f32 [1,512,512,3] -> heatmap [1,128,128,80] (sigmoid) and wh [1,128,128,4], like mb3's raw/."""
    tf = import_tf()
    rng = np.random.default_rng(5)
    w = tf.constant(rng.normal(0, 0.05, (1, 1, 3, 16)).astype(np.float32))
    wc = tf.constant(rng.normal(0, 0.5, (1, 1, 16, 80)).astype(np.float32))
    ww = tf.constant(rng.normal(0, 2.0, (1, 1, 16, 4)).astype(np.float32))

    class Mb3Like(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 512, 512, 3], tf.float32, name="images")])
        def serve(self, images):
            x = tf.nn.relu(tf.nn.conv2d(tf.nn.avg_pool2d(images, 4, 4, "VALID"), w, 1, "SAME"))
            return {"heatmap": tf.sigmoid(tf.nn.conv2d(x, wc, 1, "SAME") - 2.0), "wh": tf.nn.conv2d(x, ww, 1, "SAME")}

    m = Mb3Like()
    tf.saved_model.save(m, str(directory), signatures={"serving_default": m.serve})
    return directory


def test_compare_command_writes_the_record_the_report_reads(tmp_path, capsys):
    saved = make_mb3_like(tmp_path / "raw")
    calib = smooth_images(tmp_path / "calib", 4, 2)
    images = smooth_images(tmp_path / "val", 3, 3)
    f32, int8 = tmp_path / "m_f32.tflite", tmp_path / "m_int8.tflite"
    assert main(["quantize", str(saved), "--mode", "float32", "--out", str(f32)]) == 0
    assert main(["quantize", str(saved), "--calib", str(calib), "--count", "4", "--out", str(int8)]) == 0
    out = tmp_path / "compare.json"
    assert main(["compare", "quant", str(f32), str(int8), "--like", "mb3-centernet-f32", "--images", str(images),
                 "--saved-model", str(saved), "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "heatmap" in text and "wh" in text
    rec = json.loads(out.read_text())
    assert rec["kind"] == "quant_compare"
    assert rec["float_model"]["path"] == str(f32) and len(rec["float_model"]["sha256"]) == 64
    assert rec["quant_model"]["mode"] == "int8" and rec["quant_model"]["sidecar"] == str(int8)
    assert rec["images"] == {"dir": str(images), "count": 3, "files": sorted(p.name for p in images.iterdir())}
    assert set(rec["heads"]) == {"heatmap", "wh"}
    assert set(rec["heads"]["wh"]) >= {"cosine", "mse", "snr_db", "max_abs_err"}
    layer_keys = {"name", "op", "index", "rmse_over_scale", "snr_db", "cosine", "share", "cumulative_share"}
    assert rec["layers"] and all(layer_keys <= set(r) for r in rec["layers"])
    assert [r["index"] for r in rec["layers"]] == sorted(r["index"] for r in rec["layers"])
    assert any(r["rmse_over_scale"] is not None for r in rec["layers"])  # the sidecar's calibration replayed
    assert rec["quantization_check"]["same_model"] is True
    made = json.loads(Path(f"{int8}.json").read_text())["calibration"]
    assert rec["calibration"]["files"] == made["files"] and rec["calibration"]["count"] == 4
    assert len(rec["ranking"]) <= 10 and "threshold" in rec and "first_bad_layer" in rec
    assert rec["ranking_basis"] == "injected" and "growth_ranking" in rec and "share_by_op" in rec
    measured = [r for r in rec["layers"] if r["layer_snr_db"] is not None]
    assert measured and all(r["injected_snr_db"] == r["layer_snr_db"] for r in measured)
    assert rec["method"]["layerwise"] and rec["method"]["accumulated"]


def test_compare_quant_needs_two_models_it_can_read(tmp_path, capsys):
    assert main(["compare", "quant", str(tmp_path / "a.tflite"), str(tmp_path / "b.tflite"), "--like",
                 "mb3-centernet-f32", "--images", str(tmp_path)]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["compare", "quant", str(tmp_path / "a.tflite"), str(tmp_path / "b.tflite"), "--images",
                 str(tmp_path)]) == 2
    assert "--like" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------
# The real model


@pytest.mark.slow
def test_mb3_int8_error_starts_at_the_first_depthwise_conv_and_16x8_stays_clean(mirror, tmp_path):
    for quant in ("mb3-centernet-int8", "mb3-centernet-16x8"):
        out = tmp_path / f"{quant}.json"
        assert main(["compare", "quant", "mb3-centernet-f32", quant, "--mirror", str(mirror), "--max-images", "2",
                     "--json", str(out), "--quiet"]) == 0
        rec = json.loads(out.read_text())
        rows = {r["name"]: r for r in rec["layers"]}
        if quant.endswith("int8"):
            first = rows[rec["first_bad_layer"]]
            assert first["op"] == "DEPTHWISE_CONV_2D" and "expanded_conv_depthwise" in first["name"]
            assert rec["heads"]["heatmap"]["cosine"] < 0.8
            assert rec["growth_ranking"][0] == rec["first_bad_layer"]
            assert next(iter(rec["share_by_op"])) == "MUL"  # the hard-swish products inject most
        else:
            assert rec["quant_model"]["mode"] == "16x8"
            assert rec["heads"]["heatmap"]["cosine"] > 0.95 and rec["heads"]["wh"]["cosine"] > 0.98


# --------------------------------------------------------------------------------------------------
# The TFLite backend's keep-tensors mode, which the layer comparison reads


def _tensor_backend(path, **options):
    from harness.models.backends import BackendOptions, create_backend

    backend = create_backend("tflite", path, {}, BackendOptions(keep_tensors=True, **options))
    backend.load()
    return backend


def test_keep_tensors_reads_every_op_output_by_name(amplifier):
    """The stem is a 1x1 conv with known weights: channel c < 3 is 100/255 x_c, channel 3 is 0.5/255 (x0 - x1)."""
    batch = amplifier["batches"][0]
    x = batch[0].astype(np.float64)
    want = np.concatenate([x * 100 / 255, (x[..., :1] - x[..., 1:2]) * 0.5 / 255], axis=-1)[None]
    stem = amplifier["names"]["CONV_2D"][0]
    f32 = _tensor_backend(amplifier["f32"])
    f32.set_input(batch)
    f32.invoke()
    np.testing.assert_allclose(f32.tensor(stem), want, rtol=1e-4, atol=1e-4)
    assert [op.op for op in f32.ops()] == ["CONV_2D", "DEPTHWISE_CONV_2D", "CONV_2D"]
    assert f32.describe()["keep_tensors"]

    int8 = _tensor_backend(amplifier["int8"])
    int8.set_input(batch)
    int8.invoke()
    stem_int8 = next(t for t in int8.tensors().values() if t.name == stem)  # one scale, one zero point
    assert stem_int8.dtype == "int8" and stem_int8.scale > 0
    err = np.abs(int8.tensor(stem) - want).max()
    assert err <= stem_int8.scale * 1.5  # dequantized: within about a rounding step of the float value


def test_keep_tensors_refuses_a_delegate(amplifier, tmp_path):
    fake = tmp_path / "libdelegate.so"
    fake.write_bytes(b"")
    with pytest.raises(HarnessError, match="built-in kernels"):
        _tensor_backend(amplifier["f32"], delegate=str(fake))
