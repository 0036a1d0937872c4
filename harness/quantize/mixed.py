"""int8 with selected tensors at 16-bit activations, through ai-edge-quantizer (the optional `quantizer` extra).

The TFLite converter quantizes a whole model to one scheme; ai-edge-quantizer takes the float .tflite and
a recipe of regexes over op scopes (output tensor names, each followed by ';'), the last matching entry
winning: every supported op int8 (weights and activations), then the named layers with 16-bit
activations and int8 weights. It calibrates on the plan's images in their order, as the converter does.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from harness.common.fileio import write_bytes_atomic
from harness.common.identity import model_sha256
from harness.errors import HarnessError, first_line

EXTRA_HINT = "pip install 'centernet-harness[quantizer]' (ai-edge-quantizer)"


def _quantizer():
    try:
        from ai_edge_quantizer import qtyping, quantizer, recipe_manager
    except ImportError:
        raise HarnessError(f"int8 with 16-bit tensors needs ai-edge-quantizer, which is not installed: {EXTRA_HINT}") \
            from None
    return qtyping, quantizer, recipe_manager


def mixed_recipe(names: list[str] | tuple[str, ...]) -> list[dict]:
    """int8 everywhere, then 16-bit activations for the ops whose output is one of `names` (exact match)."""
    qtyping, _, recipe_manager = _quantizer()
    rm = recipe_manager.RecipeManager()
    every = qtyping.TFLOperationName.ALL_SUPPORTED
    rm.add_static_config(regex=".*", operation_name=every, activation_num_bits=8, weight_num_bits=8)
    if names:
        # The quantizer matches an op's scope: its output tensor names, each followed by ';'.
        pattern = "^(?:" + "|".join(re.escape(n) for n in names) + ");$"
        rm.add_static_config(regex=pattern, operation_name=every, activation_num_bits=16, weight_num_bits=8)
    return rm.get_quantization_recipe()


def _input_details(path: str | Path) -> dict:
    """dtype, shape and quantization of the input, read with the harness's runtime: tf.lite's interpreter
    cannot prepare an int8->int16 QUANTIZE."""
    from harness.models.backends import BackendOptions
    from harness.models.backends.tflite import open_tflite

    return open_tflite(path, BackendOptions(keep_tensors=True)).describe()["input"]


def quantize_mixed(saved_model: str | Path, output: str | Path, plan) -> dict:
    """Convert the SavedModel to float TFLite, quantize it by the plan's mixed recipe, write it; the record body."""
    from harness.quantize.calibration import Calibration
    from harness.quantize.convert import _tf, convert, tf_interpreter

    _, quantizer, _ = _quantizer()
    if not plan.calibration:
        raise HarnessError("int8 with 16-bit tensors needs calibration images")
    t0 = time.perf_counter()
    float_model = convert(saved_model, "float32")
    sigs = tf_interpreter(model_content=float_model).get_signature_list()
    if len(sigs) != 1:
        raise HarnessError(f"{saved_model}: expected one signature in the float TFLite, found {list(sigs)}")
    (sig, io), = sigs.items()
    (input_name,) = io["inputs"]
    cal = Calibration.from_dict(plan.calibration)
    try:
        qt = quantizer.Quantizer(float_model, mixed_recipe(list(plan.a16_tensors)))
        stats = qt.calibrate({sig: [{input_name: b} for b in cal.batches()]})
        model = bytes(qt.quantize(stats, enable_progress_bar=False, enable_progress_report=False).quantized_model)
    except HarnessError:
        raise
    except Exception as exc:  # the quantizer raises many types
        raise HarnessError(f"ai-edge-quantizer failed on {saved_model}: {first_line(exc)}") from None
    write_bytes_atomic(output, model)
    inp = _input_details(output)
    from importlib.metadata import version

    return {
        "mode": "int8+a16",
        "mode_description": "int8 with the named layers at 16-bit activations (ai-edge-quantizer)",
        "recipe": None,
        "source": {"path": str(saved_model), "sha256": model_sha256(saved_model)},
        "output": {"path": str(output), "sha256": hashlib.sha256(model).hexdigest(), "bytes": len(model),
                   "input_dtype": inp["dtype"], "input_quantization": inp["quantization"]},
        "calibration": cal.to_dict(),
        "float_layers": [],
        "a16_tensors": list(plan.a16_tensors),
        "tensorflow": _tf().__version__,
        "ai_edge_quantizer": version("ai-edge-quantizer"),
        "convert_seconds": round(time.perf_counter() - t0, 2),
        "plan": plan.to_dict(),
    }


__all__ = ["EXTRA_HINT", "mixed_recipe", "quantize_mixed"]
