"""`harness compare paths MODEL A B`: one model under two execution paths, its error per head and tensor, and AP.

The tiny CUMSUM model (tests/test_delegate_coverage.py) computes relu(cumsum(2x + 1) - 3): on x = 0..7 the
cumsum of the odd numbers 1, 3, 5, ... is 1, 4, 9, ..., 64 (the squares), exact in float32 on any kernels, so
every tensor agrees to the bit on reference kernels and on XNNPACK.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_delegate_coverage import make_cumsum_tflite

from harness.analyse.execution_paths.compare import compare_paths, parse_path
from harness.analyse.execution_paths.tensors import tensor_errors
from harness.cli import main
from harness.errors import HarnessError
from harness.models.backends import BackendOptions, create_backend


@pytest.fixture(scope="module")
def cumsum_model(tmp_path_factory):
    return make_cumsum_tflite(tmp_path_factory.mktemp("paths") / "cumsum.tflite")


def test_path_specs():
    assert parse_path("reference").options == BackendOptions(kernels="reference")
    assert parse_path("xnnpack@tf.lite", threads=2).options == BackendOptions(threads=2, runtime="tf.lite",
                                                                             kernels="xnnpack")
    assert parse_path("default").options == BackendOptions()
    with pytest.raises(HarnessError, match="unknown execution path"):
        parse_path("gpu")
    with pytest.raises(HarnessError, match="no delegate library"):
        parse_path("delegate=/nonexistent/libvx_delegate.so")


def test_every_op_output_is_readable_and_exact_on_both_paths(cumsum_model):
    x = np.arange(8, dtype=np.float32)[None]
    out = tensor_errors(cumsum_model, BackendOptions(kernels="reference"), BackendOptions(kernels="xnnpack"), [x])
    assert out["compared"] == 4 and out["identical"] == 4 and out["unreadable"] == []
    cumsum = next(r for r in out["rows"] if r["op"] == "CUMSUM")
    assert cumsum["max_abs_err"] == 0.0 and cumsum["cosine"] == pytest.approx(1.0)
    # The kept tensors are the model's real intermediates: the squares, as computed by hand.
    b = create_backend("tflite", cumsum_model, {}, BackendOptions(kernels="xnnpack", keep_tensors=True))
    b.load()
    b.set_input(x)
    b.invoke()
    assert b.tensor(cumsum["index"]).tolist() == [[(k + 1) ** 2 for k in range(8)]]
    assert b.describe()["keep_tensors"] == "every tensor preserved, xnnpack kernels"


def test_a_savedmodel_has_one_execution_path():
    with pytest.raises(HarnessError, match="its one execution path is 'default'"):
        compare_paths("mb3-centernet-hub", "default", "reference", mirror=None)


def test_bad_image_count_is_refused():
    with pytest.raises(HarnessError, match="--max-images"):
        compare_paths("mb3-centernet-f32", "reference", "xnnpack", mirror=None, max_images=0)


@pytest.mark.slow
def test_xnnpack_against_reference_kernels_on_real_images(mirror, tmp_path, capsys):
    out = tmp_path / "paths.json"
    assert main(["compare", "paths", "mb3-centernet-f32", "reference", "xnnpack", "--mirror", str(mirror),
                 "--max-images", "2", "--quiet", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["kind"] == "path_compare" and record["images"]["count"] == 2
    a, b = record["paths"]
    assert a["backend"]["kernels"] == "reference" and a["backend"]["delegation"]["delegated_ops"] == 0
    assert b["backend"]["delegation"]["cpu_ops"] == []  # XNNPACK took the whole float model
    # Two float32 implementations of one graph: they differ by rounding only, far below any detection effect
    # (float32 has 24 bits, ~144 dB; summation order and fused kernels cost some of it).
    for head in ("heatmap", "wh"):
        assert record["heads"][head]["snr_db"] > 80 and record["heads"][head]["cosine"] > 0.999999
    assert record["tensors"]["compared"] == 199 and record["tensors"]["unreadable"] == []
    assert abs(record["ap"]["AP"]["delta"]) < 0.01
    assert "per tensor: 199 op outputs compared" in capsys.readouterr().out

