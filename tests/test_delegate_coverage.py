"""Delegate coverage: which ops the delegate took and which stayed on the CPU, and bench's warning.

The tiny model has a CUMSUM between ops XNNPACK takes: XNNPACK's delegate has no CUMSUM kernel (it is not in
the delegate's list of supported TFLite ops), so it must leave that op to the CPU and split the rest into two
partitions, one on each side of it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import import_tf

from harness.cli.bench import _warn_fallback
from harness.errors import HarnessError
from harness.models.backends import BackendOptions, create_backend, tflite
from harness.models.backends.delegation import fallback_warning


def make_cumsum_tflite(path: Path) -> Path:
    """x[1,8] -> x*2+1 -> cumsum -> relu(. - 3): MUL, ADD, CUMSUM, SUB (the relu fused into it)."""
    tf = import_tf()

    @tf.function(input_signature=[tf.TensorSpec([1, 8], tf.float32)])
    def fn(x):
        return tf.nn.relu(tf.math.cumsum(x * 2.0 + 1.0, axis=1) - 3.0)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    path.write_bytes(converter.convert())
    return path


@pytest.fixture(scope="module")
def cumsum_model(tmp_path_factory) -> Path:
    return make_cumsum_tflite(tmp_path_factory.mktemp("cumsum") / "cumsum.tflite")


def _coverage(model: Path, runtime: str = "ai-edge-litert", **options) -> dict:
    backend = create_backend("tflite", model, {}, BackendOptions(runtime=runtime, **options))
    backend.load()
    return backend.describe()["delegation"]


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("runtime", ["ai-edge-litert", "tf.lite"])
def test_xnnpack_leaves_cumsum_on_the_cpu(cumsum_model, runtime):
    cov = _coverage(cumsum_model, runtime)
    assert cov["delegate"] == "XNNPACK (runtime default)"
    assert cov["cpu_by_type"] == {"CUMSUM": 1}
    assert cov["delegated_by_type"] == {"ADD": 1, "MUL": 1, "SUB": 1}
    assert cov["partitions"] == 2  # one before the CUMSUM, one after
    assert cov["fell_back"]
    line = fallback_warning(cov)
    assert line is not None and "1 of 4 ops" in line and "CUMSUM x1" in line


@pytest.mark.parametrize("kernels", ["builtin", "reference"])
def test_without_a_delegate_every_op_is_on_the_cpu_and_nothing_fell_back(cumsum_model, kernels):
    cov = _coverage(cumsum_model, kernels=kernels)
    assert cov["delegate"] is None and cov["partitions"] == 0 and cov["delegated_ops"] == 0
    assert cov["cpu_by_type"] == {"ADD": 1, "CUMSUM": 1, "MUL": 1, "SUB": 1}
    assert not cov["fell_back"] and fallback_warning(cov) is None


def test_bench_warns_on_stderr_when_an_op_fell_back(cumsum_model, capsys):
    _warn_fallback({"backend": {"delegation": _coverage(cumsum_model)}})
    assert "fell back from XNNPACK" in capsys.readouterr().err
    _warn_fallback({"backend": {"delegation": _coverage(cumsum_model, kernels="reference")}})
    _warn_fallback({"backend": {"backend": "savedmodel"}})  # no coverage at all: no line
    assert capsys.readouterr().err == ""


def _op(index: int, name: str, inputs, outputs) -> dict:
    """A node as the runtime's op listing gives it: numpy index arrays, -1 for an optional input left out."""
    return {"index": index, "op_name": name, "inputs": np.array(inputs), "outputs": np.array(outputs)}


class _Listing:
    """An interpreter that lists the given nodes, as ai-edge-litert and tf.lite do."""

    def __init__(self, ops: list[dict]) -> None:
        self._ops = ops

    def _get_ops_details(self) -> list[dict]:
        return self._ops


def test_partition_members_by_hand():
    # t0 -> A -> t1 -> B -> t2 -> C (CPU) -> t3 -> D -> t4;  E reads t1 and t4 -> t5.  Constants: t9.
    # Kernel 5 took A and B (reads t0, t9; writes t1, t2); kernel 6 took D and E (reads t1, t3; writes t5).
    ops = [_op(0, "CONV_2D", [0, 9], [1]), _op(1, "ADD", [1, 9], [2]), _op(2, "TOPK_V2", [2], [3]),
           _op(3, "MUL", [3, -1], [4]), _op(4, "ADD", [1, 4], [5]),
           _op(5, "DELEGATE", [0, 9], [1, 2]), _op(6, "DELEGATE", [1, 3], [5])]
    listing = _Listing(ops)
    assert tflite.op_list(listing)[3] == tflite.OpInfo(3, "MUL", (3,), (4,))  # -1 left out
    cov = tflite.read_coverage(listing, "libvx_delegate.so", "test-runtime 1.0")
    assert cov["model_ops"] == 5 and cov["delegated_ops"] == 4 and cov["cpu_ops"] == ["2:TOPK_V2"]
    assert cov["partitions"] == 2
    assert cov["delegated_by_type"] == {"ADD": 2, "CONV_2D": 1, "MUL": 1} and cov["fell_back"]


def test_a_runtime_without_an_op_listing_gives_unknown_coverage_and_a_one_line_refusal():
    class Old:  # an old tflite-runtime: get_tensor_details but no op listing
        def get_tensor_details(self) -> list[dict]:
            return []

    assert tflite.op_list(Old()) is None
    cov = tflite.read_coverage(Old(), "libvx_delegate.so", "tflite-runtime 2.5.0")
    assert cov == {"delegate": "libvx_delegate.so",
                   "note": "tflite-runtime 2.5.0 does not list its ops: coverage unknown"}
    with pytest.raises(HarnessError, match="the layer-wise error needs the model's op list"):
        tflite.read_ops(Old(), "the layer-wise error")


def test_only_the_tflite_backend_calls_the_private_op_listing():
    """TFLite's private `_get_ops_details` is read in one guarded place, backends/tflite.py; everything else
    goes through its reader (op_list, read_ops, read_tensors, read_coverage)."""
    package = Path(tflite.__file__).resolve().parents[2]
    hits = sorted(str(p.relative_to(package)) for p in package.rglob("*.py") if "_get_ops_details" in p.read_text())
    assert hits == ["models/backends/tflite.py"]


def test_float_mb3_is_all_xnnpack_and_int8_leaves_relus(mirror):
    # Regression pins of what ai-edge-litert's XNNPACK took when this was written (backend.delegation).
    models = mirror / "models" / "mb3-centernet"
    assert _coverage(models / "raw_f32.tflite")["cpu_ops"] == []
    assert _coverage(models / "raw_int8.tflite")["cpu_by_type"] == {"RELU": 3}
    assert _coverage(models / "raw_16x8.tflite")["delegated_ops"] == 0  # XNNPACK has no 16x8 kernels
