"""Float vs quantized model on real images: how far each head drifts, and which layers make it drift.

Per layer, three measures, because "which layer costs the accuracy" has three answers:

- injected: the error an op adds on its own. With the float SavedModel and the calibration set (int8),
  TFLite's QuantizationDebugger builds its NumericVerify debug model, where every quantized op is paired
  with a float op fed the same dequantized inputs; read with preserved tensors, that is measured
  (`layer_snr_db`, `rmse_over_scale`). Without it, the rounding of the op's output to its quantization
  step is the estimate (`rounding_snr_db`): a step that is coarse for the signal (a calibrated range
  stretched by rare outliers) injects much. `ranking` and `share` are of the injected noise-to-signal
  ratios, which add up to first order.
- accumulated (any two .tflite files of one float model): both run with every intermediate tensor kept
  and the default delegates off; each op output of the quantized model is matched by tensor name to the
  float model's (`snr_db`, `cosine`): where the error starts (`first_bad_layer`) and how it spreads.
- growth: the accumulated SNR an op loses beyond its inputs' and its own rounding (`growth_db`,
  `growth_ranking`): an op that injects little can still amplify the noise of its input, as a depthwise
  conv with a large weight on a channel that its per-tensor input quantizes coarsely does.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import HarnessError

_CASTS = ("DEQUANTIZE", "QUANTIZE")
SNR_CAP_DB = 150.0  # reported for a tensor with no error at all (a float32 rounding floor is ~140 dB)
CLEAN_SNR_DB = 60.0  # growth is measured from at most this: an error 60 dB under the signal counts as none
FIRST_BAD_SNR_DB = 20.0  # default threshold: accumulated SNR below this marks where the error starts
TOP = 10


# --------------------------------------------------------------------------------------------------
# Error statistics


@dataclass
class ErrorStats:
    """Running sums over float (reference) and quantized tensors, pooled over images."""

    n: int = 0
    sum_f2: float = 0.0
    sum_q2: float = 0.0
    sum_fq: float = 0.0
    sum_e2: float = 0.0
    max_abs: float = 0.0

    def update(self, f: np.ndarray, q: np.ndarray) -> None:
        f = np.asarray(f, np.float64).ravel()
        q = np.asarray(q, np.float64).ravel()
        if f.shape != q.shape:
            raise ValueError(f"shapes differ: {f.shape} vs {q.shape}")
        e = q - f
        self.n += f.size
        self.sum_f2 += float(f @ f)
        self.sum_q2 += float(q @ q)
        self.sum_fq += float(f @ q)
        self.sum_e2 += float(e @ e)
        if e.size:
            self.max_abs = max(self.max_abs, float(np.abs(e).max()))

    @property
    def mse(self) -> float | None:
        return self.sum_e2 / self.n if self.n else None

    @property
    def snr_db(self) -> float | None:
        """10 log10(signal power / error power); None where the float tensor is all zeros but the other is not."""
        if not self.n:
            return None
        if self.sum_e2 == 0.0:
            return SNR_CAP_DB
        if self.sum_f2 == 0.0:
            return None
        return min(SNR_CAP_DB, 10.0 * math.log10(self.sum_f2 / self.sum_e2))

    @property
    def cosine(self) -> float | None:
        if self.sum_f2 == 0.0 or self.sum_q2 == 0.0:
            return 1.0 if self.n and self.sum_f2 == self.sum_q2 == 0.0 else None
        return self.sum_fq / math.sqrt(self.sum_f2 * self.sum_q2)

    def rounding_snr_db(self, scale: float | None) -> float:
        """The SNR rounding alone to steps of `scale` would give this signal (noise scale^2/12); the cap in float."""
        if not scale or not self.n or self.sum_f2 == 0.0:
            return SNR_CAP_DB
        return min(SNR_CAP_DB, 10.0 * math.log10((self.sum_f2 / self.n) / (scale * scale / 12.0)))

    def rmse_over_scale(self, scale: float | None) -> float | None:
        """Root mean square error in quantization steps: about 0.29 (1/sqrt(12)) is ideal rounding."""
        return math.sqrt(self.mse) / scale if scale and self.mse is not None else None

    def to_dict(self) -> dict:
        return {"cosine": _r(self.cosine), "mse": _r(self.mse, 9), "snr_db": _r(self.snr_db, 2),
                "max_abs_err": _r(self.max_abs, 6)}


def _r(v: float | None, digits: int = 6) -> float | None:
    return None if v is None else round(v, digits)


# --------------------------------------------------------------------------------------------------
# Running .tflite models with every tensor kept


@dataclass(frozen=True)
class Op:
    index: int
    name: str  # op type, e.g. CONV_2D
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class TensorRun:
    """One .tflite model in an interpreter that keeps every intermediate tensor (no default delegates)."""

    def __init__(self, path: str | Path, runtime: str | None = None) -> None:
        from harness.models.backends.tflite import select_runtime

        self.path = Path(path)
        rt = select_runtime(runtime)
        resolver = sys.modules[rt.interpreter.__module__].OpResolverType
        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": that is what this is
            warnings.simplefilter("ignore")
            try:
                self.interp = rt.interpreter(
                    model_path=str(self.path), experimental_preserve_all_tensors=True,
                    experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
                self.interp.allocate_tensors()
            except (ValueError, RuntimeError) as exc:
                raise HarnessError(f"not a TFLite model: {self.path} ({str(exc).strip().splitlines()[0]})") from None
        self.runtime = rt
        inputs = self.interp.get_input_details()
        if len(inputs) != 1:
            raise HarnessError(f"{self.path.name}: expected one image input, the model has {len(inputs)}")
        self.input = inputs[0]
        self.tensors = self.interp.get_tensor_details()
        self.ops = [Op(o["index"], o["op_name"], tuple(i for i in o["inputs"] if i >= 0), tuple(o["outputs"]))
                    for o in self.interp._get_ops_details()]
        self.producer = {t: op for op in self.ops for t in op.outputs}
        self.by_name = {t["name"]: t["index"] for t in self.tensors}

    def is_activation(self, index: int) -> bool:
        return index in self.producer or index == self.input["index"]

    def quant(self, index: int) -> tuple[float, int] | None:
        """(scale, zero point) of a per-tensor quantized tensor, else None."""
        q = self.tensors[index]["quantization_parameters"]
        if len(q["scales"]) == 1 and np.issubdtype(self.tensors[index]["dtype"], np.integer):
            return float(q["scales"][0]), int(q["zero_points"][0])
        return None

    def run(self, batch: np.ndarray) -> None:
        from harness.models.backends.base import quantize

        d = self.input
        x = batch
        if np.issubdtype(d["dtype"], np.integer):
            scale, zero_point = d["quantization"]
            x = quantize(batch, d["dtype"], scale, zero_point)
        if tuple(x.shape) != tuple(d["shape"]):
            raise HarnessError(f"{self.path.name} takes input {list(d['shape'])}, got {list(x.shape)}")
        self.interp.set_tensor(d["index"], x.astype(d["dtype"], copy=False))
        self.interp.invoke()

    def value(self, index: int) -> np.ndarray | None:
        """A tensor as float32 (dequantized), or None where it cannot be read or is per-channel quantized."""
        try:
            a = self.interp.get_tensor(index)
        except ValueError:
            return None
        if np.issubdtype(a.dtype, np.integer):
            q = self.quant(index)
            if q is None:
                return None
            return (a.astype(np.float32) - np.float32(q[1])) * np.float32(q[0])
        return a.astype(np.float32, copy=False)

    def mode(self) -> str:
        """The quantization scheme its activations show: 16x8, int8, dynamic (int8 weights only) or float32."""
        act = {np.dtype(self.tensors[i]["dtype"]).name for i in [*self.producer, self.input["index"]]}
        if "int16" in act:
            return "16x8"
        if "int8" in act:
            return "int8"
        if any(np.dtype(t["dtype"]).name == "int8" for t in self.tensors):
            return "dynamic"
        return "float32"


@dataclass
class Layer:
    """One op of the quantized model whose output has a float twin."""

    index: int
    op: str
    name: str
    dtype: str
    scale: float | None
    inputs: tuple[str, ...]  # names of its activation inputs (through unmatched ops such as QUANTIZE)
    acc: ErrorStats = field(default_factory=ErrorStats)
    layerwise: ErrorStats | None = None
    layerwise_scale: float | None = None


def accumulated_errors(float_path: str | Path, quant_path: str | Path, batches: Iterable[np.ndarray],
                       runtime: str | None = None, progress: Callable[[int], None] | None = None) -> dict:
    """Every matched op output of the quantized model against the float model's, on the same inputs."""
    f = TensorRun(float_path, runtime)
    q = TensorRun(quant_path, runtime)
    input_name = q.tensors[q.input["index"]]["name"]
    layers: list[Layer] = []
    unmatched: list[str] = []
    for op in q.ops:
        out = op.outputs[0]
        name = q.tensors[out]["name"]
        if name not in f.by_name:
            unmatched.append(f"{op.index}:{op.name}:{name}")
            continue
        scale = q.quant(out)
        owner, dtype = op, np.dtype(q.tensors[out]["dtype"]).name
        if op.name in _CASTS and op.inputs and op.inputs[0] in q.producer:
            # A (de)quantize of an op with no float twin (e.g. the int8 LOGISTIC under a float output): the
            # error is that op's; name the row after it, with the quantized tensor's step.
            src = op.inputs[0]
            if q.tensors[src]["name"] not in f.by_name:
                owner, scale = q.producer[src], q.quant(src)
                dtype = np.dtype(q.tensors[src]["dtype"]).name
                unmatched = [u for u in unmatched if not u.startswith(f"{owner.index}:")]
        layers.append(Layer(owner.index, owner.name, name, dtype, scale[0] if scale else None,
                            tuple(_activation_inputs(q, owner, f.by_name))))
    input_stats = ErrorStats()
    count = 0
    for batch in batches:
        f.run(batch)
        q.run(batch)
        _update(input_stats, f.value(f.by_name.get(input_name, f.input["index"])), q.value(q.input["index"]))
        for layer in layers:
            _update(layer.acc, f.value(f.by_name[layer.name]), q.value(q.by_name[layer.name]))
        count += 1
        if progress:
            progress(count)
    # A namesake of another shape (outputs are often all called StatefulPartitionedCall:N) is no twin.
    unmatched += [f"{layer.index}:{layer.op}:{layer.name} (shape differs)" for layer in layers if not layer.acc.n]
    layers = [layer for layer in layers if layer.acc.n]
    if not layers:
        raise HarnessError(f"no tensor of {Path(quant_path).name} has a namesake of its shape in "
                           f"{Path(float_path).name}: are they conversions of the same float model?")
    return {"layers": layers, "input": (input_name, input_stats), "unmatched": unmatched, "mode": q.mode(),
            "images": count, "runtime": f"{f.runtime.name} {f.runtime.version}"}


def _update(stats: ErrorStats, fv: np.ndarray | None, qv: np.ndarray | None) -> None:
    if fv is not None and qv is not None and fv.shape == qv.shape:
        stats.update(fv, qv)


def _activation_inputs(run: TensorRun, op: Op, float_names: dict[str, int]) -> list[str]:
    """Names of the matched activations an op reads, looking through ops without a float twin."""
    names: list[str] = []
    stack = [i for i in op.inputs if run.is_activation(i)]
    seen: set[int] = set()
    while stack:
        t = stack.pop()
        if t in seen:
            continue
        seen.add(t)
        name = run.tensors[t]["name"]
        if name in float_names or t == run.input["index"]:
            names.append(name)
        elif t in run.producer:
            stack.extend(i for i in run.producer[t].inputs if run.is_activation(i))
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
        raise HarnessError(f"QuantizationDebugger failed on {saved_model}: {str(exc).strip().splitlines()[0]}"
                           ) from None
    interp = tf_interpreter(model_content=debug_model, experimental_preserve_all_tensors=True)
    details = interp.get_tensor_details()
    pairs = []  # (float name, quantized tensor index, float tensor index, scale, zero point)
    for op in interp._get_ops_details():
        if op["op_name"] != "NumericVerify":
            continue
        qi, fi = op["inputs"][:2]
        qp = details[qi]["quantization_parameters"]
        if len(qp["scales"]) != 1:
            continue
        pairs.append((details[fi]["name"], qi, fi, float(qp["scales"][0]), int(qp["zero_points"][0])))
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
    run = TensorRun(quant_path)
    compared = equal = 0
    differ = []
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


# --------------------------------------------------------------------------------------------------
# Putting the pictures together


def summarize_layers(layers: Sequence[Layer], input_stats: tuple[str, ErrorStats],
                     threshold_db: float = FIRST_BAD_SNR_DB) -> dict:
    """Per-layer rows in execution order, the rankings, and the first layer below the threshold.

    `injected_snr_db` is the error an op adds on its own: measured layer-wise when the debugger ran,
    else estimated as the rounding of its output to its quantization step. Its noise-to-signal ratios
    add up to first order, so `share` is each op's part of their sum and `ranking` orders by it.
    Without any quantized activation (dynamic range) the ranking falls back to `growth_db`.
    """
    snr = {input_stats[0]: input_stats[1].snr_db}
    rows = []
    for layer in layers:
        out = layer.acc.snr_db
        rounding = layer.acc.rounding_snr_db(layer.scale)
        ins = [snr[n] for n in layer.inputs if snr.get(n) is not None]
        # Loss against the worse of its inputs, its own rounding (that is injected error, counted apart)
        # and CLEAN_SNR_DB (so that 150 dB -> 40 dB reads as 20 dB lost, not 110): what is left is
        # error the op amplifies.
        ref = min([*ins, rounding, CLEAN_SNR_DB]) if ins else None
        growth = max(0.0, ref - out) if ref is not None and out is not None else None
        snr[layer.name] = out
        lw = layer.layerwise
        layer_snr = lw.snr_db if lw else None
        injected = layer_snr if lw else (rounding if layer.scale else None)
        rows.append({
            "name": layer.name, "op": layer.op, "index": layer.index, "dtype": layer.dtype,
            "rmse_over_scale": _r(lw.rmse_over_scale(layer.layerwise_scale), 4) if lw else None,
            "layer_snr_db": _r(layer_snr, 2),
            "snr_db": _r(out, 2), "cosine": _r(layer.acc.cosine), "mse": _r(layer.acc.mse, 9),
            "max_abs_err": _r(layer.acc.max_abs, 6), "scale": layer.scale,
            "accumulated_rmse_over_scale": _r(layer.acc.rmse_over_scale(layer.scale), 4),
            "rounding_snr_db": _r(rounding, 2), "injected_snr_db": _r(injected, 2),
            "growth_db": _r(growth, 3), "inputs": list(layer.inputs),
        })
    basis = "injected" if any(r["injected_snr_db"] is not None for r in rows) else "growth"

    def error(r: dict) -> float:
        if basis == "growth":
            return r["growth_db"] or 0.0
        return 10 ** (-r["injected_snr_db"] / 10) if r["injected_snr_db"] is not None else 0.0

    total = sum(error(r) for r in rows)
    running = 0.0
    for r in rows:
        share = error(r) / total if total else 0.0
        running += share
        r["share"] = round(share, 6)
        r["cumulative_share"] = round(running, 6)
    ranked = sorted((r for r in rows if error(r) > 0), key=lambda r: -error(r))
    grown = sorted((r for r in rows if r["growth_db"]), key=lambda r: -r["growth_db"])
    layerwise = sorted((r for r in rows if r["rmse_over_scale"] is not None), key=lambda r: -r["rmse_over_scale"])
    first_bad = next((r["name"] for r in rows if r["snr_db"] is not None and r["snr_db"] < threshold_db), None)
    by_op: dict[str, dict] = {}
    for r in rows:
        entry = by_op.setdefault(r["op"], {"share": 0.0, "layers": 0})
        entry["share"] += r["share"]
        entry["layers"] += 1
    return {
        "layers": rows,
        "ranking": [r["name"] for r in ranked[:TOP]],
        "ranking_basis": basis,
        "share_by_op": {op: {"share": round(v["share"], 4), "layers": v["layers"]}
                        for op, v in sorted(by_op.items(), key=lambda kv: -kv[1]["share"])},
        "growth_ranking": [r["name"] for r in grown[:TOP]],
        "layerwise_ranking": [r["name"] for r in layerwise[:TOP]],
        "first_bad_layer": first_bad,
        "threshold": {"metric": "snr_db", "below": threshold_db,
                      "meaning": "accumulated SNR of the op output against the float model, in dB"},
    }


def head_errors(float_backend, quant_backend, batches: Iterable[np.ndarray],
                progress: Callable[[int], None] | None = None) -> dict:
    """Per-head error of the quantized model's outputs against the float model's, as the eval reads them."""
    stats: dict[str, ErrorStats] = {}
    for n, batch in enumerate(batches, 1):
        fo = float_backend.predict(batch)
        qo = quant_backend.predict(batch)
        for head, fv in fo.items():
            if head in qo:
                stats.setdefault(head, ErrorStats()).update(fv, qo[head])
        if progress:
            progress(n)
    return {head: s.to_dict() for head, s in stats.items()}


def delta_ap(float_eval: dict, quant_eval: dict) -> dict:
    """AP lost by the quantized model, overall, per object size and per class, from two eval records."""
    reasons = []
    fd, qd = float_eval.get("dataset", {}), quant_eval.get("dataset", {})
    for key in ("annotation_sha256", "image_ids_sha256"):
        if fd.get(key) != qd.get(key):
            reasons.append(f"{key} differs")
    fp, qp = float_eval.get("protocol", {}).get("name"), quant_eval.get("protocol", {}).get("name")
    if fp != qp:
        reasons.append(f"protocol {fp} vs {qp}")
    fs, qs = float_eval["results"]["stats"], quant_eval["results"]["stats"]
    overall = {k: {"float": fs[k], "quant": qs[k], "delta": qs[k] - fs[k]}
               for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100") if k in fs and k in qs}
    per_class = {}
    fc, qc = float_eval["results"].get("per_class", {}), quant_eval["results"].get("per_class", {})
    for name, f in fc.items():
        q = qc.get(name)
        if q is None or f["AP"] < 0:
            continue
        per_class[name] = {k: (q[k] - f[k] if f[k] >= 0 and q[k] >= 0 else None) for k in ("AP", "APs", "APm", "APl")}
        per_class[name]["float_AP"] = f["AP"]
    worst = sorted(per_class, key=lambda n: per_class[n]["AP"])
    return {"like_for_like": not reasons, "reasons": reasons, "overall": overall, "per_class": per_class,
            "worst_classes": worst[:TOP]}


__all__ = ["CLEAN_SNR_DB", "FIRST_BAD_SNR_DB", "SNR_CAP_DB", "ErrorStats", "TensorRun", "accumulated_errors",
           "compare_models", "delta_ap", "head_errors", "layerwise_errors", "print_summary", "summarize_layers"]


# --------------------------------------------------------------------------------------------------
# The comparison as one run


def prepare_images(files: Sequence[Path], spec) -> list[np.ndarray]:
    """The images as the eval feeds them (the card's size and resize filter)."""
    from harness.models.images import prepare, read_rgb

    return [prepare(read_rgb(p), spec) for p in files]


def compare_models(float_card, float_path: Path, quant_card, quant_path: Path, image_files: Sequence[Path], *,
                   options, saved_model: Path | None = None, calibration=None, sidecar: dict | None = None,
                   threshold_db: float = FIRST_BAD_SNR_DB, quiet: bool = False) -> dict:
    """Per-head and per-layer error of `quant_path` against `float_path`; the body of a quant_compare record."""
    from harness.common import summary
    from harness.models.backends import create_backend
    from harness.quantize.convert import tree_sha256

    if not image_files:
        raise HarnessError("no images to compare on")
    batches = prepare_images(image_files, float_card.input)
    backends = []
    for card, path in ((float_card, float_path), (quant_card, quant_path)):
        backend = create_backend(card.backend, path, card.outputs, options)
        backend.load()
        backends.append(backend)
    heads = head_errors(*backends, batches, summary.Progress(len(batches), "heads", enabled=not quiet))
    body: dict = {
        "float_model": {"name": float_card.name, "path": str(float_path), "sha256": tree_sha256(float_path)},
        "quant_model": {"name": quant_card.name, "path": str(quant_path), "sha256": tree_sha256(quant_path),
                        "mode": sidecar.get("mode") if sidecar else None,
                        "sidecar": sidecar.get("output", {}).get("path") if sidecar else None},
        "images": {"dir": str(Path(image_files[0]).parent), "count": len(image_files),
                   "files": [Path(p).name for p in image_files]},
        "heads": heads,
        "backends": [b.describe() for b in backends],
    }
    if not (float_path.is_file() and quant_path.is_file()):
        body.update(layers=[], ranking=[], growth_ranking=[], layerwise_ranking=[], first_bad_layer=None,
                    threshold={"metric": "snr_db", "below": threshold_db},
                    method={"accumulated": None, "layerwise": None,
                            "note": "per-layer error needs two .tflite files"})
        return body
    acc = accumulated_errors(float_path, quant_path, batches, options.runtime,
                             summary.Progress(len(batches), "layers", enabled=not quiet))
    mode = body["quant_model"]["mode"] or acc["mode"]
    body["quant_model"]["mode"] = mode
    body["quant_model"]["mode_detected"] = acc["mode"]
    layerwise_note = None
    check = None
    if saved_model is None:
        layerwise_note = "no float SavedModel given (--saved-model): layer-wise error not measured"
    elif acc["mode"] != "int8":
        layerwise_note = f"the QuantizationDebugger builds int8 debug models; this model is {acc['mode']}"
    elif calibration is None:
        layerwise_note = "no calibration set (sidecar record or --calib): layer-wise error not measured"
    else:
        lw = layerwise_errors(saved_model, calibration, lambda: iter(batches), quant_path)
        for layer in acc["layers"]:
            if layer.name in lw["stats"]:
                layer.layerwise = lw["stats"][layer.name]
                layer.layerwise_scale = lw["scales"][layer.name]
        check = lw["quantization_check"]
    body.update(summarize_layers(acc["layers"], acc["input"], threshold_db))
    body["method"] = {
        "accumulated": f"tensor-by-name matching of {Path(float_path).name} and {Path(quant_path).name}, every "
                       f"tensor preserved, default delegates off ({acc['runtime']}); snr_db, cosine, mse, "
                       "max_abs_err, accumulated_rmse_over_scale, rounding_snr_db and growth_db come from it",
        "layerwise": None if layerwise_note else
        "tf.lite.experimental.QuantizationDebugger NumericVerify debug model, read with preserved tensors; "
        "rmse_over_scale and layer_snr_db come from it",
        "note": layerwise_note,
        "injected_snr_db": "layer_snr_db where measured, else rounding_snr_db (signal power over step^2/12)",
        "share": "the op's injected noise-to-signal ratio over their sum (ranking_basis 'injected'), or its "
                 "growth_db over their sum (ranking_basis 'growth', when no activation is quantized)",
        "growth_db": f"accumulated SNR an op loses against the lowest of its worst activation input, its own "
                     f"rounding_snr_db and {CLEAN_SNR_DB:g} dB; 0 when it gains",
    }
    body["quantization_check"] = check
    body["unmatched_ops"] = acc["unmatched"]
    body["calibration"] = calibration.to_dict() if calibration is not None and not layerwise_note else None
    return body


def print_summary(body: dict) -> None:
    from harness.common import summary
    fm, qm = body["float_model"], body["quant_model"]
    print(f"\n{qm['name']} ({qm.get('mode') or 'mode unknown'}) against {fm['name']} on {body['images']['count']} "
          f"images of {body['images']['dir']}")
    print(summary.table(["head", "cosine", "SNR dB", "MSE", "max |err|"],
                        [(h, s["cosine"], s["snr_db"], f"{s['mse']:.3g}", s["max_abs_err"])
                         for h, s in body["heads"].items()]))
    rows = {r["name"]: r for r in body.get("layers", [])}
    if not rows:
        print(body.get("method", {}).get("note") or "")
        return
    first = body["first_bad_layer"]
    thr = body["threshold"]["below"]
    if first:
        r = rows[first]
        print(f"\nerror starts: op {r['index']} {r['op']} {_short(first)} (accumulated SNR {r['snr_db']} dB, "
              f"first below {thr} dB)")
    else:
        print(f"\nno layer's accumulated SNR falls below {thr} dB")
    print("share of the summed error by op type: " + ", ".join(
        f"{op} {v['share']:.0%} ({v['layers']})" for op, v in body["share_by_op"].items() if v["share"] >= 0.01))
    print(f"error injected most at (share of the summed {body['ranking_basis']} error):")
    print(summary.table(["op", "type", "layer", "injected SNR dB", "share", "cum.", "rmse/scale", "acc. SNR dB"],
                        [(rows[n]["index"], rows[n]["op"], _short(n), rows[n]["injected_snr_db"],
                          f"{rows[n]['share']:.1%}", f"{rows[n]['cumulative_share']:.1%}", rows[n]["rmse_over_scale"],
                          rows[n]["snr_db"]) for n in body["ranking"]]))
    print("error grows most at (accumulated SNR lost beyond the op's inputs and own rounding):")
    print(summary.table(["op", "type", "layer", "SNR ref->out dB", "lost dB", "injected SNR dB"],
                        [(rows[n]["index"], rows[n]["op"], _short(n),
                          f"{rows[n]['snr_db'] + rows[n]['growth_db']:.1f}->{rows[n]['snr_db']:.1f}",
                          f"{rows[n]['growth_db']:.1f}", rows[n]["injected_snr_db"])
                         for n in body["growth_ranking"]]))
    check = body.get("quantization_check")
    if check and not check["same_model"]:
        print(f"note: the debugger's calibration matches {check['equal']} of {check['compared']} tensors of the "
              "model: its layer-wise numbers describe a re-calibrated model")
    if body["method"].get("note"):
        print(f"note: {body['method']['note']}")


def _short(name: str, width: int = 60) -> str:
    head = name.split(";")[0]
    return head if len(head) <= width else "..." + head[-(width - 3):]
