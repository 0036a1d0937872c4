"""Post-training quantization of a float SavedModel to TFLite, recorded so that it can be replayed.

NXP's eIQ CenterNet recipe converts with optimizations DEFAULT, TFLITE_BUILTINS_INT8, int8 input and
float32 outputs (harness.quantize.modes) over a calibration set drawn with Python's `random`
(harness.quantize.calibration); both halves are replayable here, and every setting lands in the sidecar
record written next to the model (harness.quantize.sidecar).

Selective quantization (named layers kept in float) goes through TFLite's QuantizationDebugger, the
documented route for denylisting nodes; such a model takes float input and gives float outputs.
TensorFlow is imported only when a conversion runs.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness.common.fileio import write_bytes_atomic
from harness.common.identity import model_sha256
from harness.common.tensorflow import import_tensorflow
from harness.errors import HarnessError, first_line
from harness.models.backends import tflite
from harness.quantize.calibration import Calibration
from harness.quantize.modes import MODES, Mode, get_mode

# --------------------------------------------------------------------------------------------------
# Conversion


def _tf():
    return import_tensorflow("quantization")


def tf_interpreter(**kwargs: Any) -> Any:
    """tf.lite.Interpreter (it reads the converter's own debug ops) for inspection: no deprecation warning, and
    no default delegate, whose nodes would stand among the model's own ops."""
    tf = _tf()
    kwargs.setdefault("experimental_op_resolver_type",
                      tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        interp = tf.lite.Interpreter(**kwargs)
    interp.allocate_tensors()
    return interp


def check_saved_model(path: str | Path) -> Path:
    path = Path(path)
    if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
        raise HarnessError(f"not a SavedModel directory (no saved_model.pb): {path}")
    return path


def saved_model_input(path: str | Path) -> tuple[tuple[int | None, ...], str]:
    """Shape and dtype of the serving signature's one input, to size the calibration images."""
    tf = _tf()
    path = check_saved_model(path)
    try:
        model = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types for a broken SavedModel
        raise HarnessError(f"cannot load SavedModel {path}: {first_line(exc)}") from None
    sig = getattr(model, "signatures", {}).get("serving_default")
    if sig is None:
        raise HarnessError(f"{path}: no serving_default signature to convert")
    specs = list(sig.structured_input_signature[1].values())
    if len(specs) != 1:
        raise HarnessError(f"{path}: expected one image input, the signature has {len(specs)}")
    return tuple(specs[0].shape.as_list()), specs[0].dtype.name


def converter_for(saved_model: str | Path, mode: Mode, calibration: Calibration | None) -> Any:
    """A TFLiteConverter for the SavedModel, set up for `mode` and fed `calibration` in its order."""
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_saved_model(str(check_saved_model(saved_model)))
    mode.configure(converter, tf)
    if mode.calibrated:
        if calibration is None:
            raise HarnessError(f"mode {mode.name} needs calibration images: --calib DIR (and --calib-list FILE)")
        converter.representative_dataset = lambda: ([b] for b in calibration.batches())
    return converter


def _convert(fn: Callable[[], bytes], what: str) -> bytes:
    try:
        return fn()
    except HarnessError:
        raise
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError ...
        raise HarnessError(f"{what} failed: {first_line(exc)}") from None


def op_outputs(model: bytes) -> list[tuple[str, str]]:
    """(op type, output tensor name) of a .tflite model's ops in execution order; layers are known by the name."""
    interp = tf_interpreter(model_content=model)
    tensors = tflite.read_tensors(interp)
    return [(op.op, tensors[op.outputs[0]].name)
            for op in tflite.read_ops(interp, "naming the model's layers") if op.outputs]


def _unknown_layers(names: Sequence[str], known: Sequence[str]) -> str:
    import difflib

    lines = []
    for n in names:
        close = difflib.get_close_matches(n, known, n=1, cutoff=0.5)
        lines.append(f"{n!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return "; ".join(lines)


def float_layer_names(saved_model: str | Path, layers: Sequence[str] = (), ops: Sequence[str] = ()) -> list[str]:
    """The layers to keep in float: `layers` checked to exist, plus every layer whose op type is in `ops`.

    Read from the float conversion (seconds), whose op output names are the calibrated model's, so a
    typo fails before the calibration runs.
    """
    if not layers and not ops:
        return []
    known = op_outputs(_convert(converter_for(saved_model, MODES["float32"], None).convert,
                                f"converting {saved_model} (float32)"))
    names = [n for _, n in known]
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise HarnessError(f"no layer named {_unknown_layers(unknown, names)} in {saved_model}; layer names are "
                           "op output tensor names, as `harness compare quant` lists them")
    types = sorted({t for t, _ in known})
    bad = [t for t in ops if t not in types]
    if bad:
        raise HarnessError(f"no op of type {', '.join(bad)} in {saved_model}; it has {', '.join(types)}")
    kept = list(dict.fromkeys([*layers, *(n for t, n in known if t in ops)]))
    if set(names) <= set(kept):
        raise HarnessError("every layer would stay in float: nothing is left to quantize (use --mode float32)")
    return kept


def convert(saved_model: str | Path, mode_name: str, calibration: Calibration | None = None,
            float_layers: Sequence[str] = ()) -> bytes:
    """Convert the SavedModel; `float_layers` (op output tensor names) stay in float (int8 mode only)."""
    mode = get_mode(mode_name)
    if not float_layers:
        converter = converter_for(saved_model, mode, calibration)
        return _convert(converter.convert, f"converting {saved_model} ({mode.name})")
    if mode.name != "int8":
        raise HarnessError(f"keeping layers in float works in mode int8 only (the QuantizationDebugger), "
                           f"not {mode.name}")
    return _convert(lambda: _selective(saved_model, mode, calibration, list(float_layers)),
                    f"selective quantization of {saved_model}")


def _selective(saved_model: str | Path, mode: Mode, calibration: Calibration | None, float_layers: list[str]) -> bytes:
    if calibration is None:  # the debugger runs the model on the calibration images, whatever the mode
        raise HarnessError(f"selective quantization of {saved_model} needs calibration images: --calib DIR")
    tf = _tf()
    converter = converter_for(saved_model, mode, calibration)
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=float_layers)
    with warnings.catch_warnings():  # the debugger opens a tf.lite.Interpreter, deprecated in favour of LiteRT
        warnings.simplefilter("ignore", UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([b] for b in calibration.batches()), debug_options=options)
    model = debugger.get_nondebug_quantized_model()
    interp = tf_interpreter(model_content=model)
    tensors = tflite.read_tensors(interp)
    out_dtype = {tensors[op.outputs[0]].name: tensors[op.outputs[0]].dtype
                 for op in tflite.read_ops(interp, "checking the layers kept in float") if op.outputs}
    still = [n for n in float_layers if out_dtype.get(n) != "float32"]
    if still:
        raise HarnessError(f"the converter did not keep these layers in float: {'; '.join(still)}")
    return model


def quantize_saved_model(saved_model: str | Path, output: str | Path, mode_name: str,
                         calibration: Calibration | None, *, float_layers: Sequence[str] = (),
                         float_ops: Sequence[str] = (), recipe: str | None = None,
                         overlap: dict | None = None) -> dict:
    """Convert, write the model atomically and return the body of its `quantize` record."""
    import time

    mode = get_mode(mode_name)
    if not mode.calibrated:
        calibration = None
    if (float_layers or float_ops) and mode.name != "int8":
        raise HarnessError(f"keeping layers in float works in mode int8 only, not {mode.name}")
    float_layers = float_layer_names(saved_model, float_layers, float_ops)
    t0 = time.perf_counter()
    model = convert(saved_model, mode.name, calibration, float_layers)
    seconds = time.perf_counter() - t0
    write_bytes_atomic(output, model)
    tf = _tf()
    inp = tf_interpreter(model_content=model).get_input_details()[0]
    return {
        "mode": mode.name,
        "mode_description": mode.description,
        "recipe": recipe,
        "source": {"path": str(saved_model), "sha256": model_sha256(saved_model)},
        "output": {"path": str(output), "sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model),
                   "input_dtype": np.dtype(inp["dtype"]).name,
                   "input_quantization": [float(inp["quantization"][0]), int(inp["quantization"][1])]},
        "calibration": calibration.to_dict() if calibration else None,
        "float_layers": list(float_layers),
        "float_ops": list(float_ops),
        "selective_route": "tf.lite.experimental.QuantizationDebugger denylisted_nodes" if float_layers else None,
        "calibration_overlap": overlap,
        "tensorflow": tf.__version__,
        "convert_seconds": round(seconds, 2),
    }
