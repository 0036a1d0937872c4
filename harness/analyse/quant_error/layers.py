"""Per-layer error of a quantized .tflite against its float twin: accumulated (tensor by tensor) and layer-wise.

Both models run in the TFLite backend's keep-tensors mode (every intermediate tensor kept, default
delegates off), so each op output of the quantized model can be matched by tensor name to the float
model's. The layer-wise error comes from TFLite's QuantizationDebugger, whose debug model pairs every
quantized op with a float op fed the same dequantized inputs.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from harness.analyse.quant_error.ranking import Layer
from harness.analyse.tensor_error import ErrorStats
from harness.errors import HarnessError, first_line
from harness.models.backends import BackendOptions, tflite
from harness.models.backends.tflite import open_tflite

_CASTS = ("DEQUANTIZE", "QUANTIZE")


class _Graph:
    """A .tflite model loaded with every tensor kept, with its ops indexed by the tensors they produce."""

    def __init__(self, path: str | Path, runtime: str | None = None) -> None:
        self.backend = open_tflite(path, BackendOptions(runtime=runtime, keep_tensors=True))
        self.tensors = self.backend.tensors()
        self.ops = self.backend.ops()
        self.input = self.backend.input_index
        self.producer = {t: op for op in self.ops for t in op.outputs}
        self.by_name = {t.name: t.index for t in self.tensors.values()}

    def is_activation(self, index: int) -> bool:
        return index in self.producer or index == self.input

    def quant(self, index: int) -> tuple[float, int] | None:
        """(scale, zero point) of a per-tensor quantized tensor, else None."""
        t = self.tensors[index]
        return None if t.scale is None or t.zero_point is None else (t.scale, t.zero_point)

    def dtype(self, index: int) -> str:
        return self.tensors[index].dtype

    def run(self, batch: np.ndarray) -> None:
        self.backend.set_input(batch)
        self.backend.invoke()

    def mode(self) -> str:
        """The quantization scheme its activations show: 16x8, int8, dynamic (int8 weights only) or float32."""
        act = {self.dtype(i) for i in [*self.producer, self.input]}
        if "int16" in act:
            return "16x8"
        if "int8" in act:
            return "int8"
        if any(t.dtype == "int8" for t in self.tensors.values()):
            return "dynamic"
        return "float32"


def accumulated_errors(float_path: str | Path, quant_path: str | Path, batches: Iterable[np.ndarray],
                       runtime: str | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Every matched op output of the quantized model against the float model's, on the same inputs."""
    f = _Graph(float_path, runtime)
    q = _Graph(quant_path, runtime)
    input_name = q.tensors[q.input].name
    layers: list[Layer] = []
    unmatched: list[str] = []
    for op in q.ops:
        out = op.outputs[0]
        name = q.tensors[out].name
        if name not in f.by_name:
            unmatched.append(f"{op.index}:{op.op}:{name}")
            continue
        scale = q.quant(out)
        owner, dtype = op, q.dtype(out)
        if op.op in _CASTS and op.inputs and op.inputs[0] in q.producer:
            # A (de)quantize of an op with no float twin (e.g. the int8 LOGISTIC under a float output): the
            # error is that op's; name the row after it, with the quantized tensor's step.
            src = op.inputs[0]
            if q.tensors[src].name not in f.by_name:
                owner, scale = q.producer[src], q.quant(src)
                dtype = q.dtype(src)
                unmatched = [u for u in unmatched if not u.startswith(f"{owner.index}:")]
        layers.append(Layer(owner.index, owner.op, name, dtype, scale[0] if scale else None,
                            tuple(_activation_inputs(q, owner.inputs, f.by_name))))
    input_stats = ErrorStats()
    count = 0
    for batch in batches:
        f.run(batch)
        q.run(batch)
        _update(input_stats, f.backend.tensor(f.by_name.get(input_name, f.input)), q.backend.tensor(q.input))
        for layer in layers:
            _update(layer.acc, f.backend.tensor(f.by_name[layer.name]), q.backend.tensor(q.by_name[layer.name]))
        count += 1
        if progress:
            progress(count)
    # A namesake of another shape (outputs are often all called StatefulPartitionedCall:N) is no twin.
    unmatched += [f"{layer.index}:{layer.op}:{layer.name} (shape differs)" for layer in layers if not layer.acc.n]
    layers = [layer for layer in layers if layer.acc.n]
    if not layers:
        raise HarnessError(f"no tensor of {Path(quant_path).name} has a namesake of its shape in "
                           f"{Path(float_path).name}: are they conversions of the same float model?")
    runtime_used = f.backend.runtime
    return {"layers": layers, "input": (input_name, input_stats), "unmatched": unmatched, "mode": q.mode(),
            "images": count, "runtime": f"{runtime_used.name} {runtime_used.version}"}


def _update(stats: ErrorStats, fv: np.ndarray | None, qv: np.ndarray | None) -> None:
    if fv is not None and qv is not None and fv.shape == qv.shape:
        stats.update(fv, qv)


def _activation_inputs(graph: _Graph, inputs: tuple[int, ...], float_names: dict[str, int]) -> list[str]:
    """Names of the matched activations an op reads, looking through ops without a float twin."""
    names: list[str] = []
    stack = [i for i in inputs if graph.is_activation(i)]
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        name = graph.tensors[t].name
        if name in float_names or t == graph.input:
            names.append(name)
        elif t in graph.producer:
            stack.extend(i for i in graph.producer[t].inputs if graph.is_activation(i))
    return names


# --------------------------------------------------------------------------------------------------
# Layer-wise error through the QuantizationDebugger


def layerwise_errors(saved_model: str | Path, calibration, batches: Callable[[], Iterable[np.ndarray]],
                     quant_path: str | Path | None = None) -> dict:
    """Error each int8 op adds on its own: NumericVerify pairs of the debugger's debug model, per float name.

    The debugger calibrates anew with `calibration`; when `quant_path` is given, the quantization
    parameters of its tensors are checked against the debug model's, so a report can say whether the
    layer-wise numbers describe that very model.
    """
    from harness.quantize.convert import MODES, _tf, converter_for, tf_interpreter

    tf = _tf()
    converter = converter_for(saved_model, MODES["int8"], calibration)
    try:
        with warnings.catch_warnings():  # the debugger opens a tf.lite.Interpreter, deprecated in favour of LiteRT
            warnings.simplefilter("ignore", UserWarning)
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=lambda: ([b] for b in batches()))
        debug_model = debugger.get_debug_quantized_model()
    except HarnessError:
        raise
    except Exception as exc:  # converter errors come in many types
        raise HarnessError(f"QuantizationDebugger failed on {saved_model}: {first_line(exc)}") from None
    interp = tf_interpreter(model_content=debug_model, experimental_preserve_all_tensors=True)
    tensors = tflite.read_tensors(interp)
    pairs = []  # (float name, quantized tensor index, float tensor index, scale, zero point)
    for op in tflite.read_ops(interp, "the layer-wise error"):
        if op.op != "NumericVerify":
            continue
        qi, fi = op.inputs[:2]
        q = tensors[qi]
        if q.scale is None or q.zero_point is None:  # quantized per channel: no one scale
            continue
        pairs.append((tensors[fi].name, qi, fi, q.scale, q.zero_point))
    stats = {p[0]: ErrorStats() for p in pairs}
    inp = interp.get_input_details()[0]
    for batch in batches():
        interp.set_tensor(inp["index"], batch.astype(inp["dtype"], copy=False))
        interp.invoke()
        for name, qi, fi, scale, zp in pairs:
            qv = (interp.get_tensor(qi).astype(np.float32) - np.float32(zp)) * np.float32(scale)
            stats[name].update(interp.get_tensor(fi), qv)
    check = None
    if quant_path is not None:
        check = _same_quantization(quant_path, {p[0]: (p[3], p[4]) for p in pairs})
    return {"stats": stats, "scales": {p[0]: p[3] for p in pairs}, "quantization_check": check}


def _same_quantization(quant_path: str | Path, params: dict[str, tuple[float, int]]) -> dict:
    run = _Graph(quant_path)
    compared = equal = 0
    differ: list[str] = []
    for name, (scale, zp) in params.items():
        if name not in run.by_name:
            continue
        got = run.quant(run.by_name[name])
        if got is None:
            continue
        compared += 1
        if math.isclose(got[0], scale, rel_tol=1e-6) and got[1] == zp:
            equal += 1
        elif len(differ) < 5:
            differ.append(name)
    return {"compared": compared, "equal": equal, "differ_examples": differ,
            "same_model": bool(compared) and compared == equal}


__all__ = ["accumulated_errors", "layerwise_errors"]
